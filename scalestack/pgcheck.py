"""A PostgreSQL server's health endpoint for HAProxy: its role and its replication lag.

HAProxy's own ``pgsql-check`` only learns that a server answers. The read pool
needs more: whether the server is the primary or a replica, and how far a
replica is behind. One of these runs beside each PostgreSQL server (supervised
as ``pgcheck-postgres`` and ``pgcheck-postgres-replica``) and HAProxy checks it
with ``option httpchk`` and ``check port``, the same way Patroni's REST API
(port 8008, ``GET /primary``, ``GET /replica?lag=...``) is used in production.

Endpoints (200 when the answer is "yes", 503 otherwise; JSON body either way):

``GET /primary``  the server accepts writes (not in recovery): the write pool.
``GET /read``     the primary, or a replica within ``PGCHECK_MAX_LAG`` seconds:
                  the read pool. A lagging replica leaves it until it catches up.
``GET /replica``  a replica within the lag bound.
``GET /status``   always 200 while PostgreSQL answers; the numbers for a person.

Lag is the age of the last replayed transaction while WAL that was received is
still waiting to be replayed, and 0 once everything received is replayed. (A
replica of an idle primary is therefore not "behind" just because nothing
happened.) It does not require the primary to be up: with the primary stopped,
the replica stays in the read pool and keeps serving reads.

Written by hand with the standard library's HTTP server: it is a few queries,
it is the point of the demo, and a web framework would add nothing.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

log = logging.getLogger("pgcheck")

STATE_SQL = """
SELECT pg_is_in_recovery(),
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       CASE
           WHEN NOT pg_is_in_recovery() THEN 0
           WHEN pg_last_wal_receive_lsn() IS NULL
             OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
           ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)
       END::float8,
       (SELECT status FROM pg_stat_wal_receiver)
"""


@dataclass
class ServerState:
    """What one check found out about the server."""

    server: str
    reachable: bool
    role: str | None = None
    lag_seconds: float | None = None
    max_lag_seconds: float | None = None
    receive_lsn: str | None = None
    replay_lsn: str | None = None
    wal_receiver: str | None = None
    error: str | None = None

    @property
    def within_lag(self) -> bool:
        """A replica whose lag is within the bound."""
        return self.role == "replica" and self.lag_seconds is not None and self.lag_seconds <= (self.max_lag_seconds or 0)

    def answers(self, path: str) -> bool | None:
        """Whether ``path`` is a "yes" for this server; ``None`` for an unknown path."""
        if path == "/primary":
            return self.role == "primary"
        if path == "/replica":
            return self.within_lag
        if path == "/read":
            return self.role == "primary" or self.within_lag
        if path == "/status":
            return self.reachable
        return None


class Checker:
    """Keeps one connection to the server and reads its state on demand."""

    def __init__(self, dsn: str, server: str, max_lag: float) -> None:
        self.dsn = dsn
        self.server = server
        self.max_lag = max_lag
        self._conn: psycopg.Connection | None = None
        # HAProxy checks from one process, about twice a second: one
        # connection, used by one request at a time, is plenty.
        self._lock = threading.Lock()

    def state(self) -> ServerState:
        """Query the server (reconnecting if needed); never raises."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.dsn, autocommit=True, application_name="pgcheck")
                row = self._conn.execute(STATE_SQL).fetchone()
            except psycopg.Error as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                return ServerState(self.server, reachable=False, error=str(exc).strip())
        in_recovery, receive_lsn, replay_lsn, lag, receiver = row
        return ServerState(
            self.server, reachable=True, role="replica" if in_recovery else "primary",
            lag_seconds=round(lag, 3), max_lag_seconds=self.max_lag,
            receive_lsn=receive_lsn, replay_lsn=replay_lsn, wal_receiver=receiver,
        )


def make_handler(checker: Checker) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to ``checker``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "pgcheck"

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            state = checker.state()
            verdict = state.answers(path)
            if verdict is None:
                status, body = HTTPStatus.NOT_FOUND, {"detail": f"unknown path {path}; use /primary, /read, /replica or /status"}
            else:
                status = HTTPStatus.OK if verdict else HTTPStatus.SERVICE_UNAVAILABLE
                body = asdict(state)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_OPTIONS = do_GET  # Patroni's HAProxy examples check with OPTIONS

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Health checks twice a second would drown the log: say nothing."""

    return Handler


def main() -> None:
    """Serve ``PGCHECK_LISTEN`` (host:port) for the server ``PGCHECK_DSN`` points at."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, port = os.environ["PGCHECK_LISTEN"].rsplit(":", 1)
    checker = Checker(os.environ["PGCHECK_DSN"], os.environ.get("PGCHECK_SERVER", "postgres"),
                      float(os.environ.get("PGCHECK_MAX_LAG", "10")))
    httpd = ThreadingHTTPServer((host, int(port)), make_handler(checker))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    log.info("checking %s on %s:%s (max lag %.1fs)", checker.server, host, port, checker.max_lag)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
