"""The benchmark's baseline: the stack's read pages from one Django process, started on demand.

Issue 7 asks that the stack's overhead and gains be shown against what a user
would pick instead, not in a vacuum. That alternative is ``bench/baseline``: a
plain Django 5.2 site in a single gunicorn process (one worker, four threads)
that serves the same three read pages as the web tier (``/``, ``/u/<name>``,
``/home``) by querying the PostgreSQL primary itself and caching each page's
data in memcached for 30 seconds with Django's own cache framework.

It is deliberately **not part of the stack**: it is not in the topology's
process list, supervisord never runs it, HAProxy does not balance it, and it
shares no code with ``webapp/`` or ``platform/``. It borrows only what a
second app on the same data would: the database, the memcached nodes, and the
web tier's secret key, so that a session cookie issued by the stack's login
page signs the same member in on both sites and one load generator can drive
either. It is read-only (no forms, no writes, not even to the session).

The benchmark harness (``scalestack/benchstudies.py``) uses :func:`running`
around its runs; by hand::

    .venv/bin/python -m scalestack.baseline --profile dev    # Ctrl-C stops it
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scalestack import stack
from scalestack.commands import _venv_bin
from scalestack.topology import REPO, Topology, load

# The Django project, beside the load tests and away from the stack's folders.
BASELINE_DIR = REPO / "bench" / "baseline"
# Dev-profile port; each profile moves it by its offset like every other port
# (8090 in dev, 9090 in faults, 28090 in test), clear of all of them.
BASE_PORT = 8090
# One process is the point of the comparison; its threads cover the requests
# that wait on PostgreSQL or memcached, as the stack's gunicorn servers' do.
THREADS = 4
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 40
HOST = "127.0.0.1"


def port(t: Topology) -> int:
    """The port the baseline listens on: 8090 plus the profile's port offset."""
    return t.port(BASE_PORT)


def url(t: Topology) -> str:
    """The baseline's base URL (loopback only)."""
    return f"http://{HOST}:{port(t)}"


def log_file(t: Topology) -> Path:
    """Where the baseline's gunicorn and Django log go (appended to)."""
    return t.var / "baseline.log"


def command(t: Topology) -> list[str]:
    """gunicorn from the stack's virtualenv: one worker process, four threads, on loopback."""
    return [
        _venv_bin("gunicorn"), "baseline.wsgi:application",
        "--chdir", str(BASELINE_DIR),
        "--bind", f"{HOST}:{port(t)}",
        "--name", "baseline",
        "--workers", "1", "--threads", str(THREADS), "--worker-class", "gthread",
        "--graceful-timeout", "10",
        # Stopped by signals only. Without this, gunicorn 27 opens a control
        # socket at one default path in $HOME, the one the stack's servers use.
        "--no-control-socket",
    ]


def cache_key_prefix(t: Topology, namespace: str | None = None) -> str:
    """The baseline's memcached key prefix: per profile, apart from the platform's ``ss-<profile>``.

    ``namespace`` gives one run keys of its own, so it starts with a cold cache
    even if another run cached the same pages less than 30 s before (the
    integration tests compare fresh pages with the stack's).
    """
    return f"baseline-{t.profile}-{namespace}" if namespace else f"baseline-{t.profile}"


def environment(t: Topology, cache_namespace: str | None = None, cache_ttl: int | None = None) -> dict[str, str]:
    """What the baseline runs with, beyond the inherited environment, all from ``t``.

    The database URL names the primary's own port rather than HAProxy's write
    pool: the baseline is a single app talking to its database directly. The
    secret key is the web tier's (``Topology.web_env``), so the stack's
    session cookies verify here; the platform's service token is not passed,
    because the baseline never calls the platform.
    """
    return {
        "DJANGO_SETTINGS_MODULE": "baseline.settings",
        "DJANGO_SECRET_KEY": t.web_env()["DJANGO_SECRET_KEY"],
        "SCALESTACK_SERVER_NAME": "baseline",
        "DATABASE_URL": t.database_url(t.postgres.port),
        "MEMCACHED_SERVERS": ",".join(node.address for node in t.memcached),
        "CACHE_KEY_PREFIX": cache_key_prefix(t, cache_namespace),
        "BASELINE_THREADS": str(THREADS),
        # Seconds a page's data is cached; 0: no cache, every page read fresh from PostgreSQL.
        **({"CACHE_TTL": str(cache_ttl)} if cache_ttl is not None else {}),
    }


def start(t: Topology, cache_namespace: str | None = None, cache_ttl: int | None = None) -> subprocess.Popen[bytes]:
    """Start the baseline and return once ``/healthz`` answers.

    ``cache_namespace``: see :func:`cache_key_prefix`.

    Raises :class:`scalestack.stack.StackError` with the end of its log if the
    port is already taken, or if it exits or does not answer within 30 s.
    """
    if stack.tcp_open(HOST, port(t)):
        raise stack.StackError(f"something already listens on {HOST}:{port(t)}; is a baseline still running?")
    log_path = log_file(t)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        env = {**os.environ, **environment(t, cache_namespace, cache_ttl)}
        # A session of its own, so a Ctrl-C meant for the caller's terminal
        # does not reach it before stop() does, and stop() can end the whole
        # group (the master and its worker) if it has to kill.
        process = subprocess.Popen(command(t), cwd=BASELINE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not stack.http_ok(HOST, port(t), "/healthz"):
        if process.poll() is not None or time.monotonic() > deadline:
            exited = process.returncode is not None
            why = f"exited with {process.returncode}" if exited else f"did not answer within {START_TIMEOUT:.0f} s"
            stop(process)
            raise stack.StackError(f"the baseline {why}\n{stack.tail(log_path, LOG_TAIL_LINES)}")
        time.sleep(0.2)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the baseline: SIGTERM (gunicorn's graceful stop), then SIGKILL to its group after 15 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # The group is the one start() created for this process alone.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def running(t: Topology, cache_namespace: str | None = None,
            cache_ttl: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """The baseline, running for the duration of the ``with`` block, stopped whatever happens."""
    process = start(t, cache_namespace, cache_ttl)
    try:
        yield process
    finally:
        stop(process)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Run the baseline in the foreground against a running stack until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m scalestack.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="the stack whose data it serves (default: dev)")
    t = load(parser.parse_args(argv).profile)
    # A SIGTERM ends the block like Ctrl-C, so the baseline is stopped with it
    # (it runs in a session of its own and would otherwise outlive this).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with running(t):
        print(f"baseline serving {url(t)} (log: {log_file(t)}); Ctrl-C stops it")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
