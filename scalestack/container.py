"""The entrypoint of every container in ``docker-compose.yml``.

``python -m scalestack.container ROLE`` prepares one server from the compose
topology (``scalestack/compose.py``) and then *replaces itself* with it
(``exec``), so the server is the container's main process and gets Docker's
signals directly. It renders the server's config from the same templates as
the native stack, and starts it with the same command line
(``scalestack/commands.py``).

``python -m scalestack.container health ROLE`` is each service's Docker
healthcheck: exit 0 when the server does its job, 1 otherwise.

Roles: postgres, postgres-replica, pgcheck-postgres, pgcheck-postgres-replica,
memcached, rabbitmq, haproxy, static-origin, cdn-edge, platform, web, fanout, clicks, worker,
beat, and the one-shot jobs migrate and seed.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from scalestack.compose import ComposeTopology, load
from scalestack.topology import REPO, Process

# The server-side modules (Jinja2, supervisor's client) are imported only where
# a server starts, so a healthcheck (every few seconds) stays cheap.

SERVER_ROLES = ("postgres", "postgres-replica", "pgcheck-postgres", "pgcheck-postgres-replica",
                "memcached", "rabbitmq", "haproxy", "static-origin", "cdn-edge")
APP_ROLES = ("platform", "web", "fanout", "clicks", "worker", "beat")
JOBS = ("migrate", "seed")

# Which templates each server needs, and where the rendered copy goes.
TEMPLATES = {
    "haproxy": [("haproxy/haproxy.cfg.j2", "haproxy.cfg")],
    "static-origin": [("nginx/static-origin.conf.j2", "static-origin.conf")],
    "cdn-edge": [("nginx/cdn-edge.conf.j2", "cdn-edge.conf")],
    "rabbitmq": [("rabbitmq/rabbitmq.conf.j2", "rabbitmq.conf"), ("rabbitmq/enabled_plugins.j2", "enabled_plugins")],
    "postgres": [("postgres/postgresql.conf.j2", "postgresql.conf"), ("postgres/pg_hba.conf.j2", "pg_hba.conf")],
    "postgres-replica": [("postgres/postgresql.conf.j2", "postgresql-replica.conf"),
                         ("postgres/pg_hba.conf.j2", "pg_hba.conf")],
}


def say(message: str) -> None:
    print(f"scalestack: {message}", file=sys.stderr, flush=True)


def process_for(t: ComposeTopology, role: str) -> Process:
    """The :class:`Process` this container runs."""
    if role in ("fanout", "clicks"):
        return Process(f"{role}-{socket.gethostname()}", "consumer", None)
    if role in ("memcached",):
        # memcached-1 and memcached-2 are two services of one role.
        return t.get(os.environ.get("SCALESTACK_SERVICE", "memcached-1"))
    return t.this_process(role)


def render(t: ComposeTopology, role: str) -> None:
    """Write the role's configs under ``/var/lib/scalestack/etc``."""
    from scalestack.render import render_template

    for folder in (t.etc, t.run, t.log, t.var / "tmp" / "nginx" / role, t.edge_cache.parent):
        folder.mkdir(parents=True, exist_ok=True)
    server = {"postgres-replica": t.postgres_replica, "static-origin": t.static_origin,
              "cdn-edge": t.cdn_edge, "haproxy": t.haproxy, "rabbitmq": t.rabbitmq}.get(role, t.postgres)
    for template, name in TEMPLATES.get(role, []):
        target = t.etc / name
        target.write_text(render_template(template, t, server=server))
        target.chmod(0o600)


def prepare(t: ComposeTopology, role: str) -> None:
    """First-run work before the server starts: a cluster, a base backup, folders."""
    from scalestack import stack

    if role == "postgres":
        stack.init_postgres(t, say)
        if not (t.pgdata / "scalestack-bootstrapped").exists():
            _bootstrap_primary(t)
    elif role == "postgres-replica":
        t.pg_socket_dir.mkdir(parents=True, exist_ok=True)
        stack.init_replica(t, say, drop_stale_slot=False)
    elif role == "rabbitmq":
        for folder in (t.rabbitmq_base / "mnesia", t.rabbitmq_base / "log"):
            folder.mkdir(parents=True, exist_ok=True)


def _bootstrap_primary(t: ComposeTopology) -> None:
    """Create the roles and the database on a server that listens on its socket only."""
    from scalestack import stack

    pg_ctl = str(Path("/usr/lib/postgresql/15/bin/pg_ctl"))
    options = "-c listen_addresses=''"
    subprocess.run([pg_ctl, "-D", str(t.pgdata), "-o", options, "-w", "-s", "start"], check=True)
    try:
        stack.bootstrap_database(t)
    finally:
        subprocess.run([pg_ctl, "-D", str(t.pgdata), "-m", "fast", "-w", "-s", "stop"], check=True)
    (t.pgdata / "scalestack-bootstrapped").touch()


def run(role: str) -> None:
    """Prepare and exec the server or application process of ``role``."""
    from scalestack.commands import command, environment

    t = load()
    if role in JOBS:
        run_job(t, role)
        return
    if role.startswith("pgcheck-"):
        process = t.pgcheck_for(t.get(role.removeprefix("pgcheck-")))
    elif role in ("postgres", "postgres-replica", "rabbitmq", "haproxy", "static-origin", "cdn-edge"):
        process = t.get(role)
    else:
        process = process_for(t, role)
    render(t, role)
    prepare(t, role)
    cmd = command(t, process)
    env = {**os.environ, **environment(t, process)}
    if role == "rabbitmq":
        # The Erlang cookie lives in the rabbitmq user's home.
        env["HOME"] = "/var/lib/rabbitmq"
    os.chdir(cmd.cwd)
    say(f"starting {process.name}: {' '.join(cmd.argv)}")
    os.execvpe(cmd.argv[0], cmd.argv, env)


def run_job(t: ComposeTopology, job: str) -> None:
    """The one-shot jobs: apply migrations, then seed the demo data once."""
    from scalestack import stack

    # HAProxy marks the primary UP a second or so after its check first
    # passes; wait for the write pool rather than fail the job.
    stack.wait_for(lambda: _database_answers(t), 120, "the database write pool (haproxy:9002)")
    if job == "migrate":
        stack.manage(t, "platform", "migrate", "--noinput")
    elif job == "seed":
        stack.manage(t, "platform", "seed", "--if-empty")


# --------------------------------------------------------------------------
# Healthchecks
# --------------------------------------------------------------------------
def _http_status(port: int, path: str, auth: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    headers = {"Host": "localhost"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    conn.request("GET", path, headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def _rabbitmq_connections(t: ComposeTopology) -> list[dict]:
    auth = "Basic " + base64.b64encode(f"scalestack:{t.secrets()['RABBITMQ_PASSWORD']}".encode()).decode()
    conn = http.client.HTTPConnection(t.rabbitmq.host, t.rabbitmq_management_port, timeout=3)
    conn.request("GET", "/api/connections?columns=client_properties.connection_name,state",
                 headers={"Authorization": auth})
    body = conn.getresponse().read()
    conn.close()
    return json.loads(body)


def healthy(role: str) -> bool:
    """Whether this container's server does its job (see the module docstring)."""
    t = load()
    if role in ("postgres", "postgres-replica"):
        return subprocess.run(["pg_isready", "-q", "-h", str(t.pg_socket_dir), "-p", str(t.postgres.port)]).returncode == 0
    if role.startswith("pgcheck-"):
        return _http_status(8008, "/status") == 200
    if role == "memcached":
        with socket.create_connection(("127.0.0.1", 11211), timeout=2) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION")
    if role == "rabbitmq":
        # The management API answers once the node has booted, and this
        # endpoint fails while a memory or disk alarm blocks publishers.
        return _http_status(t.rabbitmq_management_port, "/api/health/checks/alarms",
                            auth=f"scalestack:{t.secrets()['RABBITMQ_PASSWORD']}") == 200
    if role == "haproxy":
        # The process answers; whether it has servers to send to is the pools'
        # business (the stats page shows it).
        return _http_status(t.stats_port, "/stats;csv", auth=f"admin:{t.stats_password}") == 200
    if role in ("static-origin", "cdn-edge"):
        return _http_status(t.get(role).port, "/healthz") == 200
    if role == "web":
        return _http_status(t.web[0].port, "/healthz") == 200
    if role == "platform":
        return _http_status(t.platform[0].port, "/v1/healthz") == 200
    if role in ("fanout", "clicks", "beat", "worker"):
        # Consumers and workers are healthy while their broker connection is
        # open; the scheduler names its database session after itself (held
        # by the active one and the standby alike).
        name = process_for(t, role).name
        if role == "beat":
            return _beat_connected(t, name)
        if role == "worker":
            return _worker_answers(t, f"{name}@{socket.gethostname()}")
        return any(c.get("client_properties", {}).get("connection_name", "").startswith(name)
                   and c.get("state") == "running" for c in _rabbitmq_connections(t))
    raise SystemExit(f"no healthcheck for {role!r}")


def _worker_answers(t: ComposeTopology, name: str) -> bool:
    """Celery's own liveness probe: the worker answers a ping over the broker."""
    env = {**os.environ, **t.platform_env(process_for(t, "worker"))}
    result = subprocess.run(["celery", "-A", "platform_api.celery_app", "inspect", "ping", "-d", name, "-t", "5"],
                            cwd=REPO / "platform", env=env, capture_output=True, text=True)
    return result.returncode == 0


def _database_answers(t: ComposeTopology) -> bool:
    import psycopg

    try:
        with psycopg.connect(t.database_url(t.db_write_port), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _beat_connected(t: ComposeTopology, name: str) -> bool:
    import psycopg

    url = t.database_url(t.db_write_port)
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    return bool(row and row[0])


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    known = (*SERVER_ROLES, *APP_ROLES, *JOBS)
    if args[:1] == ["health"] and len(args) == 2:
        try:
            return 0 if healthy(args[1]) else 1
        except (OSError, ValueError, Exception) as exc:  # a healthcheck reports, never raises
            print(f"unhealthy: {exc}", file=sys.stderr)
            return 1
    if len(args) != 1 or args[0] not in known:
        print(f"usage: python -m scalestack.container [health] ROLE\nroles: {', '.join(known)}", file=sys.stderr)
        return 2
    run(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
