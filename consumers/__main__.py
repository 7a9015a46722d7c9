"""``python -m consumers fanout|clicks|all [--name NAME]``: run queue consumers.

The post's "Message queues": each consumer process is one member of the
off-line machine pool. supervisord runs one process per consumer
(``fanout-1``, ``fanout-2``, ``clicks-1``) from the ``platform/`` directory
with the platform's environment. ``all`` runs every queue's consumer in one
process, one thread and one RabbitMQ connection each (handy by hand).

SIGTERM or SIGINT: every consumer finishes and acknowledges its current
batch, closes its connection, and the process exits 0.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from consumers import registry

log = logging.getLogger("consumers")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m consumers", description=__doc__.splitlines()[0])
    parser.add_argument("queue", choices=[*registry.names(), "all"], help="the queue to consume, or all of them")
    parser.add_argument("--name", help="this process's name in logs and in RabbitMQ (default: the queue's)")
    return parser.parse_args(argv)


def _setup_django(name: str) -> None:
    """Configure Django with the platform's settings, naming this process ``name``."""
    # The name shows in RabbitMQ's connection list (messaging reads SERVER_NAME).
    os.environ["SCALESTACK_SERVER_NAME"] = name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_api.settings")
    try:
        import platform_api  # noqa: F401 - installed, or run from platform/
    except ImportError:
        # Appended, never prepended: the repository root must not come before
        # the standard library, whose ``platform`` module it would shadow.
        sys.path.append(str(Path(__file__).resolve().parents[1] / "platform"))
    import django

    django.setup()


def _prefix_logs(name: str) -> None:
    """Put the process name in every log line (one log file may hold several)."""
    formatter = logging.Formatter(f"%(asctime)s {name} %(levelname)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    # pika logs every step of every connection at INFO, and each failed
    # attempt as several ERROR lines with tracebacks. consumers.base logs one
    # line per connect, loss and attempt, with the exception, instead.
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def _run_all(queues: list[str], name: str, stop: threading.Event) -> int:
    """One thread per queue; if one dies, stop the others and fail (supervisord restarts us)."""
    failed = threading.Event()

    def target(queue: str) -> None:
        try:
            registry.load(queue)(f"{name}-{queue}", stop).run()
        except BaseException:
            log.exception("%s-%s died", name, queue)
            failed.set()
            stop.set()

    threads = [threading.Thread(target=target, args=(q,), name=f"{name}-{q}") for q in queues]
    for thread in threads:
        thread.start()
    # join() with a timeout, so the main thread keeps handling signals.
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.5)
    return 1 if failed.is_set() else 0


def main(argv: list[str] | None = None) -> int:
    """Run the consumer(s) until SIGTERM; the exit status is 0 after a graceful stop."""
    args = _parse_args(argv)
    name = args.name or (args.queue if args.queue != "all" else "consumers")
    _setup_django(name)
    _prefix_logs(name)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: %s received; finishing the current batch", name, signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.queue == "all":
        return _run_all(registry.names(), name, stop)
    registry.load(args.queue)(name, stop).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
