"""The compose topology and docker-compose.yml agree with each other and with the native stack.

No Docker here: these render the containers' configs from the same templates
and read the compose file. ``tests/compose`` runs the real thing.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scalestack import compose, container
from scalestack.commands import command
from scalestack.render import render_all, render_template
from scalestack.topology import REPO, Topology

COMPOSE_FILE = REPO / "docker-compose.yml"


@pytest.fixture
def ct(monkeypatch: pytest.MonkeyPatch) -> compose.ComposeTopology:
    for key in (*compose.DEVELOPMENT_SECRETS, "SCALESTACK_STATIC_PORT", "SCALESTACK_RATE_LIMIT_EXEMPT"):
        monkeypatch.delenv(key, raising=False)
    return compose.load()


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def _haproxy(t: Topology) -> str:
    return render_template("haproxy/haproxy.cfg.j2", t, server=t.postgres)


def test_haproxy_finds_scaled_replicas_through_dockers_dns(ct: compose.ComposeTopology) -> None:
    config = _haproxy(ct)
    assert "resolvers docker\n    nameserver dns 127.0.0.11:53" in config
    for service in ("web", "platform"):
        line = next(x for x in config.splitlines() if x.strip().startswith(f"server-template {service}-"))
        assert f" 1-{compose.MAX_REPLICAS} {service}:8000 check " in line
        assert line.endswith("resolvers docker init-addr none")
    # The database servers are named, checked through pgcheck beside them.
    assert "server postgres postgres:5432 check port 8008 resolvers docker" in config
    assert "server postgres-replica postgres-replica:5432 check port 8008" in config


def test_the_published_stats_page_needs_a_password_that_is_not_in_the_file(ct: compose.ComposeTopology) -> None:
    config = _haproxy(ct)
    assert 'stats auth admin:"${HAPROXY_STATS_PASSWORD}"' in config
    assert ct.stats_password not in config
    assert command_env(ct, "haproxy") == {"HAPROXY_STATS_PASSWORD": ct.stats_password}


def command_env(t: Topology, name: str) -> dict[str, str]:
    from scalestack.commands import environment

    return environment(t, t.get(name))


def test_the_native_config_keeps_its_fixed_servers_on_loopback(tmp_path: Path) -> None:
    t = Topology(profile="test", var=tmp_path, offset=20000)
    config = render_all(t)["haproxy"].read_text()
    assert "resolvers" not in config and "server-template" not in config and "stats auth" not in config
    assert "server web-1 127.0.0.1:28101 check" in config
    assert "bind 127.0.0.1:29000" in config


@pytest.mark.skipif(not Path("/usr/sbin/haproxy").exists(), reason="HAProxy is not installed")
def test_haproxy_accepts_the_compose_config(ct: compose.ComposeTopology, tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(_haproxy(ct))
    env = {**os.environ, "HAPROXY_STATS_PASSWORD": ct.stats_password or ""}
    result = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", str(path)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def test_servers_listen_on_every_container_address_and_postgres_admits_the_networks(
    ct: compose.ComposeTopology,
) -> None:
    conf = render_template("postgres/postgresql.conf.j2", ct, server=ct.postgres)
    assert "listen_addresses = '0.0.0.0'" in conf and "port = 5432" in conf
    hba = render_template("postgres/pg_hba.conf.j2", ct, server=ct.postgres)
    assert "host    scalestack   scalestack      samenet    scram-sha-256" in hba
    assert "trust" not in hba
    rabbit = render_template("rabbitmq/rabbitmq.conf.j2", ct, server=ct.postgres)
    assert "listeners.tcp.default = 0.0.0.0:5672" in rabbit
    edge = render_template("nginx/cdn-edge.conf.j2", ct, server=ct.cdn_edge)
    assert "listen 0.0.0.0:8081;" in edge and "access_log /dev/stdout;" in edge
    assert "server static-origin:8082;" in edge
    origin = render_template("nginx/static-origin.conf.j2", ct, server=ct.static_origin)
    assert "listen 0.0.0.0:8082;" in origin and "alias /var/lib/scalestack/media/;" in origin
    assert command(ct, ct.memcached[0]).argv[:5] == ["/usr/bin/memcached", "-l", "0.0.0.0", "-p", "11211"]


def test_the_platform_reaches_everything_by_service_name(ct: compose.ComposeTopology) -> None:
    env = ct.platform_env(ct.this_process("platform"))
    assert env["DATABASE_WRITE_URL"].endswith("@haproxy:9002/scalestack")
    assert env["DATABASE_READ_URL"].endswith("@haproxy:9001/scalestack")
    assert env["MEMCACHED_SERVERS"] == "memcached-1:11211,memcached-2:11211"
    assert env["RABBITMQ_URL"].startswith("amqp://scalestack:") and "@rabbitmq:5672/" in env["RABBITMQ_URL"]
    assert env["SCALESTACK_SERVER_NAME"].startswith("platform-")
    web = ct.web_env(ct.this_process("web"))
    assert web["PLATFORM_URL"] == "http://haproxy:9000"
    assert "DATABASE_PASSWORD" not in web and "DATABASE_WRITE_URL" not in web
    assert web["STATIC_URL"] == "http://localhost:8081/static/"


def test_secrets_come_from_the_environment_with_development_defaults(
    ct: compose.ComposeTopology, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ct.secrets()["DATABASE_PASSWORD"] == compose.DEVELOPMENT_SECRETS["DATABASE_PASSWORD"]
    monkeypatch.setenv("DATABASE_PASSWORD", "from-dot-env")
    # Compose passes an unset variable as "", which means "the default".
    monkeypatch.setenv("RABBITMQ_PASSWORD", "")
    secrets = compose.load().secrets()
    assert secrets["DATABASE_PASSWORD"] == "from-dot-env"
    assert secrets["RABBITMQ_PASSWORD"] == compose.DEVELOPMENT_SECRETS["RABBITMQ_PASSWORD"]


def test_supervisord_runs_the_command_lines_the_containers_run(tmp_path: Path) -> None:
    t = Topology(profile="test", var=tmp_path, offset=20000)
    conf = render_all(t)["supervisord"].read_text()
    for process in t.processes():
        line = shlex.join(command(t, process).argv).replace("%", "%%")
        assert f"command = {line}\n" in conf, process.name


def test_every_service_runs_a_role_the_entrypoint_knows_and_checks_it(services: dict[str, dict]) -> None:
    known = (*container.SERVER_ROLES, *container.APP_ROLES, *container.JOBS)
    for name, service in services.items():
        role = (service.get("command") or [name])[0]
        assert role in known, name
        if role in container.JOBS:
            assert service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"][-2:] == ["health", role.split("-")[0] if role.startswith("memcached")
                                                        else role], name


def test_the_services_are_the_compose_topologys_hosts(services: dict[str, dict], ct: compose.ComposeTopology) -> None:
    hosts = {p.host for p in ct.processes() if p.port} | {ct.internal_host}
    assert hosts <= set(services), hosts - set(services)


def test_only_the_front_door_stats_and_static_host_are_published_on_loopback(services: dict[str, dict]) -> None:
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert set(published) == {"haproxy", "cdn-edge"}
    for ports in published.values():
        assert all(p.startswith("127.0.0.1:") for p in ports)
    for name in ("postgres", "postgres-replica", "memcached-1", "memcached-2", "rabbitmq", "platform"):
        assert services[name]["networks"] == ["back"], name
    assert services["haproxy"]["networks"] == ["front", "back"]
    assert services["web"]["networks"] == ["front"]
    assert services["static-origin"]["networks"] == ["cdn"]
    assert services["cdn-edge"]["networks"] == ["front", "cdn"]
    networks = yaml.safe_load(COMPOSE_FILE.read_text())["networks"]
    assert networks["back"]["internal"] is True and networks["cdn"]["internal"] is True


def test_order_matters_where_it_should(services: dict[str, dict]) -> None:
    for name in ("platform", "seed", "fanout", "clicks", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["postgres-replica"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["pgcheck-postgres"]["network_mode"] == "service:postgres"


def test_every_image_runs_as_a_non_root_user() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")[1:]
    final_stages = [s for s in stages if not s.startswith("debian:bookworm-slim AS build")]
    assert len(final_stages) == 6
    for stage in final_stages:
        users = [line.split()[1] for line in stage.splitlines() if line.startswith("USER ")]
        assert users and users[-1] != "root", stage.splitlines()[0]


def test_the_entrypoint_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    assert container.main(["mailserver"]) == 2
    assert "roles:" in capsys.readouterr().err


def test_the_extra_ca_is_never_committed() -> None:
    ignored = (REPO / ".gitignore").read_text()
    assert "/docker/extra-ca/*.crt" in ignored
    if shutil.which("git") and (REPO / ".git").exists():
        tracked = subprocess.run(["git", "ls-files", "docker/extra-ca"], cwd=REPO, capture_output=True, text=True)
        assert tracked.stdout.split() == ["docker/extra-ca/README.md"]
