"""The topology is the one source of truth; the rendered configs agree with it."""
from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from scalestack.render import env_line, render_all
from scalestack.topology import Topology, load


@pytest.fixture
def topo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Topology:
    monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / "var"))
    return load("dev")


def test_every_process_has_a_unique_name_and_port(topo: Topology) -> None:
    processes = topo.processes()
    assert len({p.name for p in processes}) == len(processes)
    ports = [p.port for p in processes] + [topo.platform_pool_port, topo.db_read_port, topo.db_write_port,
                                           topo.stats_port]
    assert len(set(ports)) == len(ports)


def test_post_ports_are_the_posts_own_example(topo: Topology) -> None:
    assert (topo.platform_pool_port, topo.db_read_port, topo.db_write_port) == (9000, 9001, 9002)
    assert topo.front_port == 8080 and topo.static_port == 8081 and topo.stats_port == 8404


def test_test_profile_shares_no_port_or_directory_with_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCALESTACK_VAR", raising=False)
    dev, test = load("dev"), load("test")
    dev_ports = {p.port for p in dev.processes()} | {dev.platform_pool_port, dev.db_read_port, dev.db_write_port}
    test_ports = {p.port for p in test.processes()} | {test.platform_pool_port, test.db_read_port, test.db_write_port}
    assert not dev_ports & test_ports
    assert dev.pgdata != test.pgdata and dev.supervisor_socket != test.supervisor_socket


def test_web_environment_carries_no_database_credentials(topo: Topology) -> None:
    web = topo.web_env(topo.web[0])
    assert not any("DATABASE" in key for key in web)
    assert topo.secrets()["DATABASE_PASSWORD"] not in "".join(web.values())
    assert topo.secrets()["DATABASE_PASSWORD"] in topo.platform_env(topo.platform[0])["DATABASE_WRITE_URL"]


def test_secrets_are_generated_once_and_kept(topo: Topology) -> None:
    first = topo.secrets()
    assert first == topo.secrets()
    assert oct(topo.secrets_file.stat().st_mode & 0o777) == "0o600"


def test_supervisord_config_has_one_program_per_process(topo: Topology) -> None:
    written = render_all(topo)
    parser = configparser.RawConfigParser()
    parser.read(written["supervisord"])
    programs = {s.split(":", 1)[1] for s in parser.sections() if s.startswith("program:")}
    assert programs == {p.name for p in topo.processes()}
    for process in topo.web + topo.platform:
        command = parser.get(f"program:{process.name}", "command")
        assert f"--bind {process.address}" in command
        assert parser.get(f"program:{process.name}", "stopasgroup") == "true"


def test_haproxy_config_lists_every_server_and_is_valid(topo: Topology) -> None:
    text = render_all(topo)["haproxy"].read_text()
    for process in topo.web + topo.platform:
        assert f"server {process.name} {process.address} check" in text
    for port in (topo.platform_pool_port, topo.db_read_port, topo.db_write_port):
        assert f"127.0.0.1:{port}" in text
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed")
    result = subprocess.run([haproxy, "-c", "-f", str(topo.etc / "haproxy.cfg")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_scaling_a_tier_changes_every_rendered_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("SCALESTACK_WEB_SERVERS", "4")
    topo = load("dev")
    written = render_all(topo)
    assert "server web-4 127.0.0.1:8104 check" in written["haproxy"].read_text()
    assert "[program:web-4]" in written["supervisord"].read_text()


def test_env_line_quotes_and_escapes_for_supervisord() -> None:
    assert env_line({"A": 'x"y', "B": "50%"}) == 'A="x\\"y",B="50%%"'
