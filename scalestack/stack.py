"""Bring the stack up and down under supervisord, and control single processes.

supervisord does the process supervision (restarts, logs, process groups);
this module only decides the order things start in and waits for each tier to
be healthy before starting the next, the way an operator would.
"""
from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from supervisor.xmlrpc import SupervisorTransport

from scalestack.commands import PG_BIN
from scalestack.render import render_all
from scalestack.topology import REPO, Process, Topology

Say = Callable[[str], None]


class StackError(RuntimeError):
    """A step of bringing the stack up failed; the message says which and why."""


# --------------------------------------------------------------------------
# supervisord
# --------------------------------------------------------------------------
def rpc(t: Topology) -> xmlrpc.client.ServerProxy:
    """An XML-RPC proxy to this profile's supervisord (over its Unix socket)."""
    transport = SupervisorTransport(None, None, f"unix://{t.supervisor_socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisord_running(t: Topology) -> bool:
    """Whether this profile's supervisord answers on its socket."""
    if not t.supervisor_socket.exists():
        return False
    try:
        return rpc(t).supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Fault):
        return False


def start_supervisord(t: Topology) -> None:
    """Start supervisord (it daemonises) unless it already runs."""
    if supervisord_running(t):
        rpc(t).supervisor.reloadConfig()
        return
    binary = Path(sys.prefix) / "bin" / "supervisord"
    subprocess.run([str(binary), "-c", str(t.supervisor_conf)], check=True)
    wait_for(lambda: supervisord_running(t), 15, "supervisord to answer")


def start(t: Topology, name: str) -> None:
    """Start one process and wait until supervisord reports it RUNNING."""
    proxy = rpc(t)
    try:
        proxy.supervisor.startProcess(name, True)
    except xmlrpc.client.Fault as fault:
        if "ALREADY_STARTED" not in fault.faultString:
            log_tail = tail(t.log / f"{name}.log", 15)
            raise StackError(f"{name} did not start ({fault.faultString}).\n{log_tail}") from None


def stop(t: Topology, name: str) -> None:
    """Stop one process (SIGTERM or its configured signal, then wait)."""
    try:
        rpc(t).supervisor.stopProcess(name, True)
    except xmlrpc.client.Fault as fault:
        if "NOT_RUNNING" not in fault.faultString:
            raise


@dataclass
class ProcessState:
    """One row of ``scalestack status``."""

    name: str
    role: str
    state: str
    pid: int | None
    address: str
    uptime: str


def status(t: Topology) -> list[ProcessState]:
    """Every process of the topology with supervisord's view of it."""
    info: dict[str, dict] = {}
    if supervisord_running(t):
        info = {p["name"]: p for p in rpc(t).supervisor.getAllProcessInfo()}
    rows = []
    for process in t.processes():
        p = info.get(process.name, {})
        state = p.get("statename", "DOWN")
        pid = p.get("pid") or None
        uptime = p.get("description", "").rpartition("uptime ")[2] if state == "RUNNING" else ""
        rows.append(ProcessState(process.name, process.role, state, pid, process.address, uptime))
    return rows


def down(t: Topology, say: Say = print) -> None:
    """Stop every process and supervisord itself."""
    if not supervisord_running(t):
        say("stack is not running")
        return
    proxy = rpc(t)
    # Front to back, so no tier sees its dependencies vanish while serving.
    for process in reversed(t.processes()):
        stop(t, process.name)
    pid_file = t.run / "supervisord.pid"
    proxy.supervisor.shutdown()
    wait_for(lambda: not pid_file.exists(), 20, "supervisord to exit")
    say("stack stopped")


# --------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------
def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")


def tcp_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(host: str, port: int, path: str) -> bool:
    """Whether ``GET path`` answers 200."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        conn.request("GET", path, headers={"Host": "localhost"})
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file (for error messages)."""
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last lines of {path} ---\n" + "\n".join(text)


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------
def _as_pg_superuser(t: Topology, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a PostgreSQL binary as the OS user that owns the cluster.

    PostgreSQL refuses to run as root, so as root every binary runs as the
    ``postgres`` user, on a data directory that user owns.
    """
    if t.run_as_root:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, **kwargs)


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def init_postgres(t: Topology, say: Say) -> None:
    """Create the primary's data directory on first run (``initdb``)."""
    t.pg_socket_dir.mkdir(parents=True, exist_ok=True)
    _chown_postgres(t.pg_socket_dir)
    if (t.pgdata / "PG_VERSION").exists():
        _configure_postgres(t, t.postgres)
        return
    say("creating the PostgreSQL cluster (initdb)")
    t.pgdata.mkdir(parents=True, exist_ok=True)
    t.pgdata.chmod(0o700)
    _chown_postgres(t.pgdata)
    result = _as_pg_superuser(
        t,
        [str(PG_BIN / "initdb"), "-D", str(t.pgdata), "-U", t.pg_superuser,
         "--auth-local=peer", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise StackError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    _configure_postgres(t, t.postgres)


def _configure_postgres(t: Topology, server: Process) -> None:
    """Point a cluster's own postgresql.conf at its rendered settings.

    Everything after the marker is ours and is rewritten: a replica's data
    directory starts as a copy of the primary's, include line and all.
    """
    conf = t.pgdata_of(server) / "postgresql.conf"
    include = f"include = '{t.pg_conf_of(server)}'\nhba_file = '{t.etc / 'pg_hba.conf'}'\n"
    marker = "# scalestack settings\n"
    text = _as_pg_superuser(t, ["cat", str(conf)], capture_output=True, text=True, check=True).stdout
    wanted = text.split(marker, 1)[0].rstrip("\n") + "\n\n" + marker + include
    if text != wanted:
        _as_pg_superuser(t, ["sh", "-c", f'printf "%s" "$0" > {conf}', wanted], check=True)


def init_replica(t: Topology, say: Say, drop_stale_slot: bool = True) -> None:
    """Make the streaming replica on first run: a base backup of the running primary.

    ``pg_basebackup -R`` writes ``standby.signal`` and the connection settings,
    and ``-C -S`` creates the replication slot through which the primary keeps
    the WAL the replica has not received yet.
    """
    data = t.replica_pgdata
    if (data / "PG_VERSION").exists():
        _configure_postgres(t, t.postgres_replica)
        return
    say("creating the streaming replica (pg_basebackup from the primary)")
    shutil.rmtree(data, ignore_errors=True)
    data.parent.mkdir(parents=True, exist_ok=True)
    # A slot left by a replica whose data directory was deleted would make -C
    # fail. (A container cannot reach the primary's socket: there, the
    # backup reuses such a slot instead.)
    if drop_stale_slot:
        psql(t, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = :'slot' AND NOT active", variables={"slot": t.replication_slot})
    env = {**os.environ, "PGPASSWORD": t.secrets()["REPLICATION_PASSWORD"]}
    if t.run_as_root:
        _chown_postgres(data.parent)
    argv = [str(PG_BIN / "pg_basebackup"), "-h", t.postgres.host, "-p", str(t.postgres.port), "-U", "replicator",
            "-D", str(data), "-X", "stream", "-R", "-C", "-S", t.replication_slot, "--checkpoint=fast"]
    result = _as_pg_superuser(t, argv, capture_output=True, text=True, env=env)
    if result.returncode != 0 and "already exists" in result.stderr:
        shutil.rmtree(data, ignore_errors=True)
        argv.remove("-C")
        result = _as_pg_superuser(t, argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise StackError(f"pg_basebackup failed:\n{result.stdout}\n{result.stderr}")
    _configure_postgres(t, t.postgres_replica)


def set_replica_delay(t: Topology, seconds: float) -> None:
    """Make the replica apply WAL ``seconds`` late (``recovery_min_apply_delay``); 0 undoes it.

    For fault tests and demonstrations of replica lag; takes effect on reload.
    """
    path = t.etc / "postgresql-replica-delay.conf"
    if seconds > 0:
        path.write_text(f"recovery_min_apply_delay = '{int(seconds * 1000)}ms'\n")
        path.chmod(0o644)
    else:
        path.unlink(missing_ok=True)
    psql(t, "SELECT pg_reload_conf()", server=t.postgres_replica)


def psql(t: Topology, script: str, database: str = "postgres", variables: dict[str, str] | None = None,
         server: Process | None = None) -> str:
    """Run a SQL script as the superuser over the Unix socket; return its output."""
    argv = [
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(t.pg_socket_dir),
        "-p", str((server or t.postgres).port), "-U", t.pg_superuser, "-d", database, "-At",
    ]
    for key, value in (variables or {}).items():
        argv += ["-v", f"{key}={value}"]
    result = _as_pg_superuser(t, argv, input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"psql failed: {result.stderr.strip()}")
    return result.stdout


BOOTSTRAP_SQL = """
SELECT format('CREATE ROLE scalestack LOGIN PASSWORD %L', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scalestack') \\gexec
SELECT format('ALTER ROLE scalestack PASSWORD %L', :'password') \\gexec
SELECT 'CREATE ROLE replicator REPLICATION LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \\gexec
SELECT format('ALTER ROLE replicator PASSWORD %L', :'replication_password') \\gexec
SELECT 'CREATE ROLE scalestack_health LOGIN IN ROLE pg_monitor'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scalestack_health') \\gexec
SELECT format('ALTER ROLE scalestack_health PASSWORD %L', :'health_password') \\gexec
DROP ROLE IF EXISTS haproxy_check;
SELECT 'CREATE DATABASE scalestack OWNER scalestack'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'scalestack') \\gexec
"""


def bootstrap_database(t: Topology) -> None:
    """Create the application role and database (idempotent; syncs the password)."""
    s = t.secrets()
    psql(t, BOOTSTRAP_SQL, variables={
        "password": s["DATABASE_PASSWORD"],
        "replication_password": s["REPLICATION_PASSWORD"],
        "health_password": s["HEALTH_PASSWORD"],
    })


# --------------------------------------------------------------------------
# Django management commands
# --------------------------------------------------------------------------
def _run_manage(t: Topology, service: str, args: tuple[str, ...], capture: bool) -> subprocess.CompletedProcess:
    """Run ``manage.py`` of the platform or the web tier, with that tier's environment."""
    env = {**os.environ, **(t.platform_env() if service == "platform" else t.web_env())}
    cwd = REPO / ("platform" if service == "platform" else "webapp")
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None,
    )
    if result.returncode != 0:
        raise StackError(f"manage.py {' '.join(args)} failed:\n{result.stdout or ''}{result.stderr or ''}")
    return result


def manage(t: Topology, service: str, *args: str, quiet: bool = False) -> None:
    """Run a management command; its output goes to the terminal unless ``quiet``."""
    _run_manage(t, service, args, capture=quiet)


def manage_output(t: Topology, service: str, *args: str) -> str:
    """Run a management command and return what it printed."""
    return _run_manage(t, service, args, capture=True).stdout


# --------------------------------------------------------------------------
# Up
# --------------------------------------------------------------------------
def _start_all(t: Topology, processes: Iterable[Process], ready: Callable[[Process], bool], timeout: float) -> None:
    processes = list(processes)
    for process in processes:
        start(t, process.name)
    for process in processes:
        wait_for(lambda: ready(process), timeout, f"{process.name} on {process.address}")


def init_rabbitmq(t: Topology) -> None:
    """Create the node's directories; as root they belong to the ``rabbitmq`` user."""
    for folder in (t.rabbitmq_base, t.rabbitmq_base / "mnesia", t.rabbitmq_base / "log"):
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "rabbitmq", "rabbitmq")


def rabbitmq_api(t: Topology, path: str) -> object | None:
    """GET a RabbitMQ management API path (JSON), or ``None`` if it doesn't answer."""
    import base64
    import json

    password = t.secrets()["RABBITMQ_PASSWORD"]
    auth = base64.b64encode(f"scalestack:{password}".encode()).decode()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", t.rabbitmq_management_port, timeout=3)
        conn.request("GET", f"/api/{path}", headers={"Authorization": f"Basic {auth}"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return json.loads(body) if response.status == 200 else None
    except (OSError, ValueError):
        return None


def up(t: Topology, say: Say = print, seed: bool = True) -> None:
    """Start every process in dependency order and wait until the site answers."""
    say(f"rendering configs into {t.etc}")
    # A fresh start: no server is draining, whatever a stopped stack left behind.
    shutil.rmtree(t.run / "drain", ignore_errors=True)
    init_rabbitmq(t)
    render_all(t)
    init_postgres(t, say)
    start_supervisord(t)

    say("starting PostgreSQL (primary and streaming replica), memcached and RabbitMQ")
    _start_all(t, [t.postgres], lambda p: tcp_open(p.host, p.port), 60)
    bootstrap_database(t)
    init_replica(t, say)
    _start_all(t, [t.postgres_replica], lambda p: tcp_open(p.host, p.port), 60)
    _start_all(t, t.pgchecks, lambda p: http_ok(p.host, p.port, "/status"), 30)
    _start_all(t, [*t.memcached, t.rabbitmq], lambda p: tcp_open(p.host, p.port), 90)
    wait_for(lambda: rabbitmq_api(t, "overview") is not None, 60, "RabbitMQ's management API")

    say("starting HAProxy (front door, platform pool, database pools)")
    _start_all(t, [t.haproxy], lambda p: tcp_open("127.0.0.1", t.db_write_port), 20)
    wait_for(lambda: _db_pool_up(t), 20, "HAProxy's database pools to see PostgreSQL")

    say("applying database migrations")
    manage(t, "platform", "migrate", "--noinput", quiet=True)
    if seed:
        manage(t, "platform", "seed", "--if-empty")
    say("collecting static files for nginx")
    manage(t, "web", "collectstatic", "--noinput", quiet=True)

    say("starting the platform and web servers, the static origin and the CDN edge")
    _start_all(t, t.platform, lambda p: http_ok(p.host, p.port, "/v1/healthz"), 60)
    _start_all(t, t.web, lambda p: http_ok(p.host, p.port, "/healthz"), 60)
    # The static origin, then the CDN edge in front of it.
    _start_all(t, [t.static_origin, t.cdn_edge], lambda p: http_ok(p.host, p.port, "/healthz"), 20)
    wait_for(lambda: http_ok("127.0.0.1", t.front_port, "/healthz"), 20, "the front door")

    say("starting the off-line pool: consumers, Celery workers, schedulers")
    # supervisord reports RUNNING once a process has stayed up for a second.
    _start_all(t, t.offline, lambda p: True, 30)


@dataclass
class OfflineStatus:
    """What ``scalestack status`` shows about the off-line pool."""

    active_beat: str | None
    queues: dict[str, int]
    outbox_pending: int | None


def offline_status(t: Topology) -> OfflineStatus:
    """The active scheduler, queue depths (dead-letter queues included) and the outbox."""
    active = None
    outbox = None
    try:
        # The scheduler holding the lease is the one whose session holds an
        # advisory lock; it names itself in application_name.
        active = psql(
            t,
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'beat-%' LIMIT 1",
            database="scalestack",
        ).strip() or None
        outbox = int(psql(t, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL",
                          database="scalestack").strip() or 0)
    except StackError:
        pass
    queues = rabbitmq_api(t, "queues") or []
    # Celery's per-worker remote-control queues (``*.pidbox``) are not work queues.
    depths = {
        q["name"]: int(q.get("messages", 0))
        for q in queues
        if isinstance(q, dict) and not q["name"].endswith(".pidbox")
    }
    return OfflineStatus(active, depths, outbox)


def _db_pool_up(t: Topology) -> bool:
    """Whether HAProxy reports the primary UP in both database pools (its runtime API)."""
    stats = server_stats(t)
    return all(stats.get((pool, t.postgres.name), {}).get("status") == "UP"
               for pool in ("db_write_pool", "db_read_pool"))


def server_stats(t: Topology) -> dict[tuple[str, str], dict[str, str]]:
    """HAProxy's ``show stat``, one row per (proxy, server), fields by their CSV names."""
    return parse_stats_csv(haproxy_command(t, "show stat"))


def parse_stats_csv(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """HAProxy's stats CSV (``show stat``, or ``/stats;csv``), keyed by (proxy, server)."""
    lines = text.splitlines()
    if not lines:
        return {}
    header = lines[0].lstrip("# ").split(",")
    rows = (dict(zip(header, line.split(","))) for line in lines[1:] if line.count(",") >= 2)
    return {(row["pxname"], row["svname"]): row for row in rows}


def haproxy_command(t: Topology, command: str) -> str:
    """Send one command to HAProxy's runtime API and return its answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(t.haproxy_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()
    except OSError:
        return ""


# --------------------------------------------------------------------------
# Drain and scale: HAProxy's runtime API and hitless reloads
# --------------------------------------------------------------------------
POOLS = {"web": "web_pool", "platform": "platform_pool"}


def _pool_of(t: Topology, name: str) -> str:
    process = t.get(name)
    if process.role not in POOLS:
        raise StackError(f"{name} is not in an HAProxy pool (only web and platform servers are)")
    return POOLS[process.role]


def server_sessions(t: Topology, pool: str, name: str) -> int | None:
    """Requests in flight on one server, from HAProxy's ``show stat`` (``scur``)."""
    row = server_stats(t).get((pool, name))
    return int(row["scur"] or 0) if row else None


def drain(t: Topology, name: str, timeout: float = 30) -> None:
    """Take a server out of its pool gracefully and wait for its requests to finish.

    ``state drain``: HAProxy sends it no new requests, and the ones in flight
    complete normally. The drain file makes the server's own ``/healthz``
    answer 503 as well, so the server says it is going away to anything else
    that checks it (the smart client, a second load balancer).
    """
    pool = _pool_of(t, name)
    flag = t.drain_file(t.get(name))
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    answer = haproxy_command(t, f"set server {pool}/{name} state drain").strip()
    if answer:
        raise StackError(f"HAProxy refused to drain {name}: {answer}")
    wait_for(lambda: server_sessions(t, pool, name) == 0, timeout, f"{name}'s requests to finish")


def ready(t: Topology, name: str) -> None:
    """Put a drained server back into its pool."""
    pool = _pool_of(t, name)
    t.drain_file(t.get(name)).unlink(missing_ok=True)
    answer = haproxy_command(t, f"set server {pool}/{name} state ready").strip()
    if answer:
        raise StackError(f"HAProxy refused to ready {name}: {answer}")


def reload_haproxy(t: Topology) -> None:
    """Hitless reload: USR2 to HAProxy's master, which starts a new worker with the
    new config on the same listening sockets; the old worker finishes its
    connections and exits, so no request is dropped.
    """
    result = subprocess.run(["/usr/sbin/haproxy", "-c", "-q", "-f", str(t.etc / "haproxy.cfg")],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"the new HAProxy config is invalid:\n{result.stderr}")
    rpc(t).supervisor.signalProcess("haproxy", "USR2")


def scale(t: Topology, web: int | None, platform: int | None, say: Say = print) -> Topology:
    """Change the number of web and/or platform servers while the stack serves traffic.

    Growing: render, start the new servers, wait until they are healthy, then
    reload HAProxy to add them. Shrinking: drain the servers that go, reload
    HAProxy without them, then stop them. Either way no request is dropped.
    """
    import dataclasses

    from scalestack.topology import MAX_SERVERS_PER_TIER

    new = dataclasses.replace(
        t,
        web_servers=web if web is not None else t.web_servers,
        platform_servers=platform if platform is not None else t.platform_servers,
    )
    for count in (new.web_servers, new.platform_servers):
        if not 1 <= count <= MAX_SERVERS_PER_TIER:
            raise StackError(f"a tier needs 1 to {MAX_SERVERS_PER_TIER} servers, not {count}")
    old_names = {p.name for p in t.web + t.platform}
    new_names = {p.name for p in new.web + new.platform}
    added = [p for p in new.web + new.platform if p.name not in old_names]
    removed = [p for p in t.web + t.platform if p.name not in new_names]

    for process in removed:
        say(f"draining {process.name}")
        drain(t, process.name)
    render_all(new)
    proxy = rpc(new)
    proxy.supervisor.reloadConfig()
    for process in added:
        proxy.supervisor.addProcessGroup(process.name)
        start(new, process.name)
        path = "/healthz" if process.role == "web" else "/v1/healthz"
        wait_for(lambda: http_ok(process.host, process.port, path), 60, process.name)
        say(f"started {process.name} on {process.address}")
    say("reloading HAProxy (hitless)")
    reload_haproxy(new)
    for process in removed:
        stop(new, process.name)
        proxy.supervisor.removeProcessGroup(process.name)
        t.drain_file(process).unlink(missing_ok=True)
        say(f"stopped {process.name}")
    save_layout(new)
    return new


def save_layout(t: Topology) -> None:
    """Record the tier sizes and the balancing mode, so every later command sees them."""
    import json

    from scalestack.topology import SCALE_FILE

    layout = {"web": t.web_servers, "platform": t.platform_servers, "balancing": t.platform_balancing,
              "data_cache": t.data_cache}
    (t.var / SCALE_FILE).write_text(json.dumps(layout))


def set_balancing(t: Topology, mode: str, say: Say = print) -> Topology:
    """Switch the web tier between HAProxy's platform pool and the smart client, hitlessly."""
    import dataclasses

    if mode not in ("haproxy", "smart"):
        raise StackError(f"balancing must be 'haproxy' or 'smart', not {mode!r}")
    new = dataclasses.replace(t, platform_balancing=mode)
    _rolling_restart(new, new.web, "web_pool", "/healthz", f"PLATFORM_BALANCING={mode}", say)
    return new


def set_data_cache(t: Topology, on: bool, say: Say = print) -> Topology:
    """Turn the platform's data cache (memcached read-through/write-through) on or off, hitlessly.

    For the benchmark's A/B study. Turning it back on starts from a cache that
    may hold entries from before it was turned off; the platform's
    write-through bumps key generations on every write, and an entry is only
    ever read under its current generation, so nothing stale is served (but a
    benchmark warms up before it measures).
    """
    import dataclasses

    new = dataclasses.replace(t, data_cache=on)
    _rolling_restart(new, new.platform, "platform_pool", "/v1/healthz",
                     f"DATA_CACHE_ENABLED={'true' if on else 'false'}", say)
    return new


def _rolling_restart(new: Topology, processes: list[Process], pool: str, health: str, what: str,
                     say: Say) -> None:
    """Restart ``processes`` one at a time with ``new``'s environment; the others keep serving.

    Each is drained, restarted, checked healthy and put back, and HAProxy must
    see it UP before the next one goes, so no request is dropped.
    """
    render_all(new)
    proxy = rpc(new)
    proxy.supervisor.reloadConfig()
    for process in processes:
        say(f"restarting {process.name} with {what}")
        drain(new, process.name)
        stop(new, process.name)
        # A program's environment is read when its group is added, so re-add it.
        proxy.supervisor.removeProcessGroup(process.name)
        proxy.supervisor.addProcessGroup(process.name)
        start(new, process.name)
        ready(new, process.name)
        wait_for(lambda: http_ok(process.host, process.port, health), 60, process.name)
        wait_for(lambda: _server_up(new, pool, process.name), 30, f"HAProxy to see {process.name} UP")
    save_layout(new)


def _server_up(t: Topology, pool: str, name: str) -> bool:
    return server_stats(t).get((pool, name), {}).get("status") == "UP"
