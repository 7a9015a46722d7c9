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
    assert len(_ports(topo)) == len(set(_ports(topo)))


def _ports(t: Topology) -> list[int]:
    """Every port the profile listens on."""
    servers = [p.port for p in t.processes() if p.port is not None]
    return servers + [t.platform_pool_port, t.db_read_port, t.db_write_port, t.stats_port,
                      t.rabbitmq_management_port, t.rabbitmq_dist_port]


def test_post_ports_are_the_posts_own_example(topo: Topology) -> None:
    assert (topo.platform_pool_port, topo.db_read_port, topo.db_write_port) == (9000, 9001, 9002)
    assert topo.front_port == 8080 and topo.static_port == 8081 and topo.stats_port == 8404


def test_test_profile_shares_no_port_or_directory_with_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCALESTACK_VAR", raising=False)
    dev, test = load("dev"), load("test")
    assert not set(_ports(dev)) & set(_ports(test))
    assert dev.pgdata != test.pgdata and dev.supervisor_socket != test.supervisor_socket
    assert dev.rabbitmq_nodename != test.rabbitmq_nodename and dev.rabbitmq_base != test.rabbitmq_base


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
    for process in topo.offline:
        assert parser.get(f"program:{process.name}", "directory").endswith("/platform")
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


def test_rabbitmq_runs_as_a_private_node_of_its_profile(topo: Topology) -> None:
    from scalestack.render import rabbitmq_env

    env = rabbitmq_env(topo)
    for name in ("RABBITMQ_NODENAME", "RABBITMQ_MNESIA_BASE", "RABBITMQ_LOG_BASE", "RABBITMQ_CONFIG_FILE",
                 "RABBITMQ_ENABLED_PLUGINS_FILE", "RABBITMQ_DIST_PORT"):
        assert env[name], name
    assert env["RABBITMQ_MNESIA_BASE"].startswith(str(topo.var))
    written = render_all(topo)
    conf = written["rabbitmq"].read_text()
    assert f"listeners.tcp.default = 127.0.0.1:{topo.rabbitmq.port}" in conf
    assert f"management.tcp.port = {topo.rabbitmq_management_port}" in conf
    assert "rabbitmq_management" in written["rabbitmq_plugins"].read_text()
    assert oct(written["rabbitmq"].stat().st_mode & 0o777) == "0o600", "it holds the broker password"


def test_offline_pool_processes_get_the_platform_environment(topo: Topology) -> None:
    for process in topo.offline:
        env = topo.platform_env(process)
        assert env["SCALESTACK_SERVER_NAME"] == process.name
        assert env["RABBITMQ_URL"].startswith(f"amqp://scalestack:") and str(topo.rabbitmq.port) in env["RABBITMQ_URL"]
    assert [p.name for p in topo.beat] == ["beat-1", "beat-2"]


def test_only_the_celery_workers_wait_long_for_a_database_connection(topo: Topology) -> None:
    # An interactive write fails fast with a 503; a job with nobody waiting on it waits out a busy second.
    timeouts = {p.role: topo.platform_env(p)["DATABASE_POOL_TIMEOUT"] for p in topo.platform + topo.offline}
    assert timeouts == {"platform": "1", "consumer": "1", "worker": "10", "beat": "1"}


def test_a_scaled_tier_size_is_remembered_and_env_still_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from scalestack.topology import SCALE_FILE

    monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / "var"))
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / SCALE_FILE).write_text(json.dumps({"web": 4, "platform": 3}))
    topo = load("dev")
    assert [p.name for p in topo.web] == ["web-1", "web-2", "web-3", "web-4"]
    assert len(topo.platform) == 3
    monkeypatch.setenv("SCALESTACK_WEB_SERVERS", "1")
    assert len(load("dev").web) == 1


def test_the_balancing_mode_is_remembered_with_the_tier_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scalestack.stack import save_layout

    monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / "var"))
    monkeypatch.delenv("SCALESTACK_PLATFORM_BALANCING", raising=False)
    (tmp_path / "var").mkdir()
    import dataclasses

    save_layout(dataclasses.replace(load("dev"), platform_balancing="smart", web_servers=3))
    again = load("dev")
    assert again.platform_balancing == "smart" and len(again.web) == 3
    # A later `scalestack scale` keeps the mode instead of silently reverting it.
    assert again.web_env(again.web[0])["PLATFORM_BALANCING"] == "smart"


def test_three_profiles_share_no_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCALESTACK_VAR", raising=False)
    ports = {name: set(_ports(load(name))) for name in ("dev", "test", "faults")}
    assert not ports["dev"] & ports["test"] and not ports["dev"] & ports["faults"] and not ports["test"] & ports["faults"]
    assert load("faults").var != load("test").var


def test_the_read_pool_holds_both_servers_and_the_write_pool_checks_for_a_primary(topo: Topology) -> None:
    rendered = render_all(topo)["haproxy"].read_text()
    read_pool = rendered.split("listen db_read_pool", 1)[1].split("listen db_write_pool", 1)[0]
    write_pool = rendered.split("listen db_write_pool", 1)[1]
    assert "uri /read" in read_pool and "uri /primary" in write_pool
    for db in topo.databases:
        line = f"server {db.name} {db.address} check port {topo.pgcheck_for(db).port}"
        assert line in read_pool and line in write_pool
    replica_conf = render_all(topo)["postgresql_replica"].read_text()
    assert f"port = {topo.postgres_replica.port}" in replica_conf
    assert "postgresql-replica-delay.conf" in replica_conf
    assert "delay" not in render_all(topo)["postgresql"].read_text()


def test_the_front_door_rate_limits_per_client_and_exempts_the_load_generators(topo: Topology) -> None:
    from scalestack.topology import LOAD_GENERATOR_NETWORK, LOAD_GENERATOR_SOURCE

    rendered = render_all(topo)["haproxy"].read_text()
    assert f"acl rate_limit_exempt src {LOAD_GENERATOR_NETWORK}\n" in rendered
    assert f"gt {topo.rate_limit_requests} }}" in rendered
    import ipaddress

    assert ipaddress.ip_address(LOAD_GENERATOR_SOURCE) in ipaddress.ip_network(LOAD_GENERATOR_NETWORK)
    # In dev, a person at 127.0.0.1 is limited like any client.
    assert "127.0.0.1" not in rendered.split("acl rate_limit_exempt", 1)[1].split("\n", 1)[0].split()
