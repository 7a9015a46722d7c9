"""The command line of every process, for supervisord and for the containers.

supervisord (``supervisor/supervisord.conf.j2``) and the containers'
entrypoint (``scalestack/container.py``) both start a process with
:func:`command`, so a flag is never written twice.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from scalestack.topology import REPO, Process, Topology

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _venv_bin(name: str) -> str:
    return str(Path(sys.prefix) / "bin" / name)


def workers_per_server() -> int:
    """gunicorn workers per web or platform server (threads handle I/O waits)."""
    return int(os.environ.get("SCALESTACK_WORKERS", 2))


@dataclass(frozen=True)
class Command:
    """A process's argv and the directory it runs in."""

    argv: list[str]
    cwd: Path = REPO


def _gunicorn(t: Topology, process: Process, app: str, folder: str, access_log: bool) -> Command:
    argv = [
        _venv_bin("gunicorn"), app, "--chdir", str(REPO / folder),
        "--bind", t.bind_address(process), "--name", process.name,
        "--workers", str(workers_per_server()), "--threads", "4", "--worker-class", "gthread",
        "--graceful-timeout", "10",
        # gunicorn 27's control socket has one default path per user
        # (~/.gunicorn/gunicorn.ctl): every server would take it from the last.
        # Supervisord already controls the servers, so none has one.
        "--no-control-socket",
    ]
    if access_log:
        argv += ["--access-logfile", "-", "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms']
    return Command(argv, REPO / folder)


def command(t: Topology, process: Process) -> Command:
    """How to start ``process`` (see the module docstring)."""
    role = process.role
    if role == "postgres":
        return Command([str(PG_BIN / "postgres"), "-D", str(t.pgdata_of(process))])
    if role == "pgcheck":
        return Command([sys.executable, "-m", "scalestack.pgcheck"])
    if role == "memcached":
        # The post's "In-memory caches": LRU eviction when the 64 MB are full.
        host, port = t.bind_address(process).rsplit(":", 1)
        argv = ["/usr/bin/memcached", "-l", host, "-p", port, "-U", "0", "-m", "64", "-c", "1024"]
        if t.run_as_root:
            argv += ["-u", "memcache"]
        return Command(argv)
    if role == "rabbitmq":
        return Command(["/usr/lib/rabbitmq/bin/rabbitmq-server"], t.rabbitmq_base)
    if role == "haproxy":
        return Command(["/usr/sbin/haproxy", "-W", "-db", "-f", str(t.etc / "haproxy.cfg")])
    if role in ("static-origin", "cdn-edge"):
        error_log = t.nginx_logs(process)[1]
        return Command(["/usr/sbin/nginx", "-c", str(t.etc / f"{process.name}.conf"), "-g", "daemon off;",
                        "-e", error_log])
    if role == "platform":
        return _gunicorn(t, process, "platform_api.wsgi", "platform", access_log=True)
    if role == "web":
        # No gunicorn access log: news_web logs one richer line per request
        # (which platform servers answered it, and how the cache did).
        return _gunicorn(t, process, "news_web.wsgi", "webapp", access_log=False)
    platform = REPO / "platform"
    if role == "consumer":
        # A pika consumer (consumers/): the post's "Message queues".
        kind = process.name.rsplit("-", 1)[0]
        return Command([sys.executable, "-m", "consumers", kind, "--name", process.name], platform)
    if role == "worker":
        # A Celery worker: exports, rollups, trending, purges and map-reduce.
        return Command([_venv_bin("celery"), "-A", "platform_api.celery_app", "worker", "-n", f"{process.name}@%h",
                        "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "INFO"], platform)
    if role == "beat":
        # A redundant scheduler: only the holder of a PostgreSQL advisory lock schedules.
        return Command([sys.executable, "-m", "platform_api.beat", "--name", process.name,
                        "--schedule", str(t.run / f"{process.name}-schedule")], platform)
    raise ValueError(f"no command for {process.name} (role {role})")


def environment(t: Topology, process: Process) -> dict[str, str]:
    """The environment ``process`` runs with, beyond the inherited one."""
    from scalestack.render import rabbitmq_env

    if process.role in ("platform", "consumer", "worker", "beat"):
        return t.platform_env(process)
    if process.role == "web":
        return t.web_env(process)
    if process.role == "pgcheck":
        return t.pgcheck_env(process)
    if process.role == "rabbitmq":
        return rabbitmq_env(t)
    if process.role == "haproxy" and t.stats_password:
        # The template refers to it as "${HAPROXY_STATS_PASSWORD}", so the
        # password is never written into the rendered file.
        return {"HAPROXY_STATS_PASSWORD": t.stats_password}
    return {}
