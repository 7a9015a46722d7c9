"""The one definition of the stack: which processes run, their names and ports.

Everything else is derived from this module: the supervisord config, the
HAProxy config (``haproxy/haproxy.cfg.j2``), the nginx config, each process's
environment, the ``scalestack status`` table and the test fixtures. Nothing
about names or ports is written twice.

Two profiles share one layout. ``dev`` (``make run``) uses the ports in the
README; ``test`` (``make test``) adds an offset and uses its own data directory,
so a test run can go on beside a running dev stack.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Base ports of the dev profile. The front door, the three internal HAProxy
# pools (the post's localhost:9000, :9001 and :9002) and the static host are
# fixed; the servers behind them sit on ports of their own.
FRONT_PORT = 8080
STATIC_PORT = 8081  # the CDN edge: the only static address pages use
STATIC_ORIGIN_PORT = 8082  # the static host behind it; only the edge talks to it
STATS_PORT = 8404
PLATFORM_POOL_PORT = 9000
DB_READ_POOL_PORT = 9001
DB_WRITE_POOL_PORT = 9002
WEB_BASE_PORT = 8100
PLATFORM_BASE_PORT = 8200
POSTGRES_PORT = 5433  # not 5432, so a system PostgreSQL can stay
POSTGRES_REPLICA_PORT = 5434
# Each PostgreSQL server has a small HTTP health endpoint beside it
# (scalestack/pgcheck.py) that tells HAProxy whether it is the primary or a
# replica and how far behind it is, like Patroni's REST API on its port 8008.
PGCHECK_BASE_PORT = 8007
MEMCACHED_BASE_PORT = 11310  # not 11211, for the same reason
RABBITMQ_PORT = 5673  # not 5672
RABBITMQ_MANAGEMENT_PORT = 15673
# Erlang distribution port, fixed so that two nodes (dev and test) never clash.
RABBITMQ_DIST_PORT = 5674

# ``test`` is the integration suite's stack, ``faults`` the fault suite's: each
# has its own ports and data directory, so either can run beside the others.
# (faults: +1000 keeps every port clear of dev's and test's, and below the
# kernel's ephemeral range, where an outgoing connection could take one.)
PROFILE_PORT_OFFSET = {"dev": 0, "test": 20000, "faults": 1000}
# Profiles whose periodic tasks run every few seconds, so tests need not wait.
FAST_PROFILES = frozenset({"test", "faults"})
# The address the fault suite's and the benchmarks' load generators send from.
# The whole of 127.0.0.0/8 is loopback, so a generator can bind a source address
# of its own, and the front door's per-client rate limit can tell it apart from
# a person browsing from 127.0.0.1 (it exempts LOAD_GENERATOR_NETWORK, the way a
# production site exempts its own synthetic load and monitoring).
LOAD_GENERATOR_NETWORK = "127.0.0.128/25"
LOAD_GENERATOR_SOURCE = "127.0.0.130"
SCALE_FILE = "scale.json"
# Room in the port plan: web servers use 8101-8199, platform servers 8201-8299.
MAX_SERVERS_PER_TIER = 20


@dataclass(frozen=True)
class Process:
    """One supervised process: a server in one of the stack's tiers."""

    name: str
    role: str
    # Consumers, workers and schedulers listen on nothing.
    port: int | None
    host: str = "127.0.0.1"
    # Which pool (if any) HAProxy balances this server in.
    pool: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` as HAProxy and clients write it (``-`` for no port)."""
        return f"{self.host}:{self.port}" if self.port else "-"


@dataclass(frozen=True)
class Topology:
    """The whole stack for one profile."""

    profile: str
    var: Path
    offset: int
    web_servers: int = 2
    platform_servers: int = 2
    memcached_nodes: int = 2
    fanout_consumers: int = 2
    click_consumers: int = 1
    celery_workers: int = 2
    beats: int = 2
    front_bind: str = "127.0.0.1"
    data_cache: bool = True
    # Who balances the web tier's platform calls: "haproxy" (its :9000 pool) or
    # "smart" (the web servers' own smart client, webapp/news_web/smart_client.py).
    platform_balancing: str = "haproxy"
    fault_injection: bool = False
    # A replica that lags more than this many seconds leaves the read pool
    # until it catches up (scalestack/pgcheck.py answers HAProxy's check).
    replica_max_lag: float = 10.0
    # The front door's per-client limit: requests per source address over
    # ``rate_limit_period`` seconds before it answers 429.
    rate_limit_requests: int = 300
    rate_limit_period: int = 10
    # Source networks the rate limit leaves alone (the load generators).
    rate_limit_exempt: tuple[str, ...] = (LOAD_GENERATOR_NETWORK,)
    # How long HAProxy waits on a server that accepted a request but does not
    # answer before retrying it elsewhere (``timeout server``).
    hung_server_timeout: int = 4
    # A web or platform server that comes back gets its full share of traffic
    # gradually over this many seconds (HAProxy's slowstart).
    slowstart_seconds: int = 5
    run_as_root: bool = field(default_factory=lambda: os.geteuid() == 0)

    # --- where things listen (the compose topology, scalestack/compose.py,
    # overrides these: there every server is a container on a Docker network)
    # Whether HAProxy finds the web and platform servers through DNS
    # (``server-template`` and ``resolvers``) rather than a fixed list.
    discovery: bool = False
    # The address HAProxy's internal pools, PostgreSQL, memcached and RabbitMQ
    # bind: loopback, where only this machine's processes reach them.
    internal_bind: str = "127.0.0.1"
    # Where the platform reaches HAProxy's internal pools.
    internal_host: str = "127.0.0.1"
    # Clients PostgreSQL accepts over TCP (pg_hba.conf).
    pg_client_networks: tuple[str, ...] = ("127.0.0.1/32",)

    def bind_address(self, process: Process) -> str:
        """The ``host:port`` a server listens on."""
        return process.address

    @property
    def stats_password(self) -> str | None:
        """The password HAProxy's stats page asks for: none on loopback."""
        return None

    # --- ports ------------------------------------------------------------
    def port(self, base: int) -> int:
        """A dev-profile port moved into this profile's range."""
        return base + self.offset

    @property
    def front_port(self) -> int:
        """The front door: users' browsers connect here."""
        return self.port(FRONT_PORT)

    @property
    def static_port(self) -> int:
        """The CDN edge (nginx with proxy_cache): pages load every asset and avatar here."""
        return self.port(STATIC_PORT)

    @property
    def static_origin_port(self) -> int:
        """The static host behind the edge (nginx serving files)."""
        return self.port(STATIC_ORIGIN_PORT)

    @property
    def stats_port(self) -> int:
        """HAProxy's stats page."""
        return self.port(STATS_PORT)

    @property
    def platform_pool_port(self) -> int:
        """HAProxy's web-tier → platform pool (the post's localhost:9000)."""
        return self.port(PLATFORM_POOL_PORT)

    @property
    def db_read_port(self) -> int:
        """HAProxy's database read pool (the post's localhost:9001)."""
        return self.port(DB_READ_POOL_PORT)

    @property
    def db_write_port(self) -> int:
        """HAProxy's database write pool (the post's localhost:9002)."""
        return self.port(DB_WRITE_POOL_PORT)

    # --- processes --------------------------------------------------------
    @property
    def web(self) -> list[Process]:
        """The Django web servers."""
        return [
            Process(f"web-{i}", "web", self.port(WEB_BASE_PORT + i), pool="web")
            for i in range(1, self.web_servers + 1)
        ]

    @property
    def platform(self) -> list[Process]:
        """The platform API servers."""
        return [
            Process(f"platform-{i}", "platform", self.port(PLATFORM_BASE_PORT + i), pool="platform")
            for i in range(1, self.platform_servers + 1)
        ]

    @property
    def memcached(self) -> list[Process]:
        """The memcached nodes (the platform's HashClient spreads keys over them)."""
        return [
            Process(f"memcached-{i}", "memcached", self.port(MEMCACHED_BASE_PORT + i))
            for i in range(1, self.memcached_nodes + 1)
        ]

    @property
    def postgres(self) -> Process:
        """The PostgreSQL primary."""
        return Process("postgres", "postgres", self.port(POSTGRES_PORT), pool="db")

    @property
    def postgres_replica(self) -> Process:
        """The streaming replica (pg_basebackup + a replication slot), read pool only."""
        return Process("postgres-replica", "postgres", self.port(POSTGRES_REPLICA_PORT), pool="db")

    @property
    def databases(self) -> list[Process]:
        """Every PostgreSQL server: the primary first, then the replica."""
        return [self.postgres, self.postgres_replica]

    def pgcheck_for(self, server: Process) -> Process:
        """The health endpoint that reports ``server``'s role and replication lag."""
        index = self.databases.index(server)
        return Process(f"pgcheck-{server.name}", "pgcheck", self.port(PGCHECK_BASE_PORT + 1 + index))

    @property
    def pgchecks(self) -> list[Process]:
        """One health endpoint per PostgreSQL server."""
        return [self.pgcheck_for(server) for server in self.databases]

    @property
    def replication_slot(self) -> str:
        """The primary keeps WAL for the replica in this physical slot."""
        return "scalestack_replica"

    @property
    def haproxy(self) -> Process:
        """HAProxy: front door, platform pool, database read and write pools."""
        return Process("haproxy", "haproxy", self.front_port, host=self.front_bind)

    @property
    def static_origin(self) -> Process:
        """nginx serving the collected static files and user uploads: the post's static.example.com."""
        return Process("static-origin", "static-origin", self.static_origin_port)

    @property
    def cdn_edge(self) -> Process:
        """nginx with proxy_cache in front of the origin: the post's CDN, a read-through cache."""
        return Process("cdn-edge", "cdn-edge", self.static_port)

    @property
    def rabbitmq(self) -> Process:
        """The private RabbitMQ node (AMQP port; management on :attr:`rabbitmq_management_port`)."""
        return Process("rabbitmq", "rabbitmq", self.port(RABBITMQ_PORT))

    @property
    def rabbitmq_management_port(self) -> int:
        """RabbitMQ's management API and UI (queue depths)."""
        return self.port(RABBITMQ_MANAGEMENT_PORT)

    @property
    def rabbitmq_dist_port(self) -> int:
        """The Erlang distribution port of the node."""
        return self.port(RABBITMQ_DIST_PORT)

    @property
    def rabbitmq_nodename(self) -> str:
        """The node's name: one per profile, so dev and test nodes can run side by side."""
        return f"scalestack-{self.profile}@localhost"

    @property
    def consumers(self) -> list[Process]:
        """The pika consumers: fan-out to timelines, and the click log."""
        fanout = [Process(f"fanout-{i}", "consumer", None) for i in range(1, self.fanout_consumers + 1)]
        clicks = [Process(f"clicks-{i}", "consumer", None) for i in range(1, self.click_consumers + 1)]
        return fanout + clicks

    @property
    def workers(self) -> list[Process]:
        """The Celery workers."""
        return [Process(f"worker-{i}", "worker", None) for i in range(1, self.celery_workers + 1)]

    @property
    def beat(self) -> list[Process]:
        """The redundant schedulers: one holds the lease and schedules, the others wait."""
        return [Process(f"beat-{i}", "beat", None) for i in range(1, self.beats + 1)]

    @property
    def offline(self) -> list[Process]:
        """The off-line machine pool: consumers, workers and schedulers."""
        return [*self.consumers, *self.workers, *self.beat]

    def processes(self) -> list[Process]:
        """Every process, in start order (dependencies first)."""
        return [
            self.postgres,
            self.postgres_replica,
            *self.pgchecks,
            *self.memcached,
            self.rabbitmq,
            self.haproxy,
            *self.platform,
            *self.web,
            self.static_origin,
            self.cdn_edge,
            *self.offline,
        ]

    def get(self, name: str) -> Process:
        """The process called ``name`` (``web-1``, ``memcached-2``, ...)."""
        for process in self.processes():
            if process.name == name:
                return process
        known = ", ".join(p.name for p in self.processes())
        raise KeyError(f"no process named {name!r}; known: {known}")

    # --- URLs -------------------------------------------------------------
    @property
    def site_url(self) -> str:
        """Where a browser reaches the site."""
        host = "localhost" if self.front_bind in ("127.0.0.1", "0.0.0.0") else self.front_bind
        return f"http://{host}:{self.front_port}"

    @property
    def static_url(self) -> str:
        """The prefix pages load static files from (the CDN edge, never the web servers)."""
        return f"http://localhost:{self.static_port}/static/"

    @property
    def media_url(self) -> str:
        """The prefix of user uploads (avatars), also through the edge."""
        return f"http://localhost:{self.static_port}/media/"

    @property
    def stats_url(self) -> str:
        """HAProxy's stats page."""
        return f"http://127.0.0.1:{self.stats_port}/stats"

    @property
    def platform_url(self) -> str:
        """How the web tier reaches the platform: through HAProxy's pool."""
        return f"http://{self.internal_host}:{self.platform_pool_port}"

    # --- paths ------------------------------------------------------------
    @property
    def etc(self) -> Path:
        """Rendered configuration files."""
        return self.var / "etc"

    @property
    def platform_servers_file(self) -> Path:
        """The platform servers as JSON, for the smart client (scalestack/smartclient_config.py)."""
        return self.etc / "platform-servers.json"

    @property
    def log(self) -> Path:
        """One log file per process."""
        return self.var / "log"

    @property
    def run(self) -> Path:
        """Sockets and pid files."""
        return self.var / "run"

    @property
    def pgdata(self) -> Path:
        """The primary's data directory."""
        return self.var / "pg" / "primary"

    @property
    def replica_pgdata(self) -> Path:
        """The replica's data directory (a base backup of the primary)."""
        return self.var / "pg" / "replica"

    def pgdata_of(self, server: Process) -> Path:
        """The data directory of one PostgreSQL server."""
        return self.pgdata if server == self.postgres else self.replica_pgdata

    def pg_conf_of(self, server: Process) -> Path:
        """The rendered settings file a PostgreSQL server includes."""
        return self.etc / ("postgresql.conf" if server == self.postgres else "postgresql-replica.conf")

    def drain_file(self, process: Process) -> Path:
        """While this file exists the server's /healthz answers 503 (``scalestack drain``)."""
        return self.run / "drain" / process.name

    def nginx_logs(self, process: Process) -> tuple[str, str]:
        """An nginx server's access and error logs."""
        return str(self.log / f"{process.name}-access.log"), str(self.log / f"{process.name}-error.log")

    @property
    def media_root(self) -> Path:
        """User uploads: the platform writes them, the static origin serves them."""
        return self.var / "media"

    @property
    def edge_cache(self) -> Path:
        """The CDN edge's cache (nginx proxy_cache_path)."""
        return self.var / "cache" / "edge"

    @property
    def pg_socket_dir(self) -> Path:
        """Where PostgreSQL's Unix socket lives (peer auth for the superuser)."""
        return self.var / "run" / "pg"

    @property
    def static_root(self) -> Path:
        """Where ``collectstatic`` puts the site's assets for nginx."""
        return self.var / "static"

    @property
    def secrets_file(self) -> Path:
        """Generated secrets: created once per data directory, never committed."""
        return self.var / "secrets.env"

    @property
    def supervisor_conf(self) -> Path:
        """The rendered supervisord config."""
        return self.etc / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        """supervisord's control socket."""
        return self.run / "supervisor.sock"

    @property
    def haproxy_socket(self) -> Path:
        """HAProxy's runtime API (``show stat``, ``disable server``...)."""
        return self.run / "haproxy.sock"

    @property
    def rabbitmq_base(self) -> Path:
        """The node's data and logs (owned by the ``rabbitmq`` user when run as root)."""
        return self.var / "rabbitmq"

    @property
    def pg_superuser(self) -> str:
        """PostgreSQL's bootstrap superuser: ``postgres`` as root, else the current user."""
        return "postgres" if self.run_as_root else os.environ.get("USER", "postgres")

    # --- secrets and environment -----------------------------------------
    def secrets(self) -> dict[str, str]:
        """This data directory's secrets, generated on first use."""
        path = self.secrets_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            values = {
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
                "PLATFORM_TOKEN": secrets.token_urlsafe(32),
                "DATABASE_PASSWORD": secrets.token_urlsafe(24),
                "RABBITMQ_PASSWORD": secrets.token_urlsafe(24),
                "REPLICATION_PASSWORD": secrets.token_urlsafe(24),
                "HEALTH_PASSWORD": secrets.token_urlsafe(24),
            }
            path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
            path.chmod(0o600)
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        values = {k: v for k, v in pairs}
        # A data directory made before a service joined the stack lacks its secret.
        for key in ("RABBITMQ_PASSWORD", "REPLICATION_PASSWORD", "HEALTH_PASSWORD"):
            if key not in values:
                values[key] = secrets.token_urlsafe(24)
                with path.open("a") as handle:
                    handle.write(f"{key}={values[key]}\n")
        return values

    @property
    def rabbitmq_url(self) -> str:
        """AMQP URL of the private node (default vhost)."""
        password = self.secrets()["RABBITMQ_PASSWORD"]
        return f"amqp://scalestack:{password}@{self.rabbitmq.host}:{self.rabbitmq.port}/%2F"

    @property
    def rabbitmq_management_url(self) -> str:
        """Base URL of RabbitMQ's management API."""
        return f"http://{self.rabbitmq.host}:{self.rabbitmq_management_port}"

    def database_url(self, port: int) -> str:
        """The platform's URL for one of HAProxy's database pools."""
        password = self.secrets()["DATABASE_PASSWORD"]
        return f"postgres://scalestack:{password}@{self.internal_host}:{port}/scalestack"

    def platform_env(self, process: Process | None = None) -> dict[str, str]:
        """Environment of a platform server (the only tier with database credentials)."""
        s = self.secrets()
        return {
            "DJANGO_SETTINGS_MODULE": "platform_api.settings",
            "DJANGO_SECRET_KEY": s["DJANGO_SECRET_KEY"],
            "PLATFORM_TOKEN": s["PLATFORM_TOKEN"],
            "SCALESTACK_SERVER_NAME": process.name if process else "platform-admin",
            "SCALESTACK_DRAIN_FILE": str(self.drain_file(process)) if process else "",
            "DATABASE_WRITE_URL": self.database_url(self.db_write_port),
            "DATABASE_READ_URL": self.database_url(self.db_read_port),
            "MEMCACHED_SERVERS": ",".join(m.address for m in self.memcached),
            "DATA_CACHE_ENABLED": "true" if self.data_cache else "false",
            "CACHE_KEY_PREFIX": f"ss-{self.profile}",
            "SCALESTACK_FAULT_INJECTION": "true" if self.fault_injection else "false",
            # A write waits at most this long for a primary connection before
            # it gets a 503; the read fence usually fails it sooner. A Celery
            # worker has no user waiting on it: it waits longer rather than fail
            # a job because the machine was busy for a second.
            "DATABASE_POOL_TIMEOUT": "10" if process and process.role == "worker" else "1",
            # Recycle pooled connections so the read pool rebalances after a
            # server returns (the test profiles quickly, to keep tests short).
            "DATABASE_POOL_MAX_LIFETIME": "60" if self.profile == "dev" else "10",
            "MEDIA_ROOT": str(self.media_root),
            "RABBITMQ_URL": self.rabbitmq_url,
            "RABBITMQ_MANAGEMENT_URL": self.rabbitmq_management_url,
            **self.schedule_env(),
        }

    def schedule_env(self) -> dict[str, str]:
        """Periodic-task intervals: the test stack runs them every few seconds."""
        if self.profile not in FAST_PROFILES:
            return {"SCALESTACK_EXPORT_CHUNK_DELAY": "0.3"}
        return {"SCALESTACK_TRENDING_SECONDS": "5", "SCALESTACK_RELAY_SECONDS": "1",
                "SCALESTACK_BEAT_POLL_SECONDS": "1", "SCALESTACK_FANOUT_CHUNK": "50"}

    def pgcheck_env(self, check: Process) -> dict[str, str]:
        """Environment of a PostgreSQL health endpoint: whom it checks, and the lag bound."""
        server = self.databases[self.pgchecks.index(check)]
        return {
            "PGCHECK_DSN": (f"host=127.0.0.1 port={server.port} dbname=postgres user=scalestack_health "
                            f"password={self.secrets()['HEALTH_PASSWORD']} connect_timeout=2"),
            "PGCHECK_LISTEN": self.bind_address(check),
            "PGCHECK_SERVER": server.name,
            "PGCHECK_MAX_LAG": str(self.replica_max_lag),
        }

    def web_env(self, process: Process | None = None) -> dict[str, str]:
        """Environment of a web server: no database credentials at all."""
        s = self.secrets()
        return {
            "DJANGO_SETTINGS_MODULE": "news_web.settings",
            "DJANGO_SECRET_KEY": s["DJANGO_SECRET_KEY"],
            "PLATFORM_TOKEN": s["PLATFORM_TOKEN"],
            "PLATFORM_URL": self.platform_url,
            "PLATFORM_BALANCING": self.platform_balancing,
            # Timeouts nest: one platform call, retried once elsewhere, must
            # end before the front door gives up on this web server
            # (hung_server_timeout), or a page would be cut off mid-retry.
            "PLATFORM_TIMEOUT": str(self.hung_server_timeout / 2 - 0.5),
            "PLATFORM_SERVERS_FILE": str(self.platform_servers_file),
            "SCALESTACK_SERVER_NAME": process.name if process else "web-admin",
            "SCALESTACK_DRAIN_FILE": str(self.drain_file(process)) if process else "",
            "STATIC_URL": self.static_url,
            "MEDIA_URL": self.media_url,
            "STATIC_ROOT": str(self.static_root),
        }


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def load(profile: str | None = None) -> Topology:
    """The topology for ``profile`` (default: ``$SCALESTACK_PROFILE`` or ``dev``).

    Environment overrides: ``SCALESTACK_VAR`` (data directory),
    ``SCALESTACK_PORT_OFFSET``, ``SCALESTACK_WEB_SERVERS``,
    ``SCALESTACK_PLATFORM_SERVERS``, ``SCALESTACK_BIND`` (front door address),
    ``SCALESTACK_DATA_CACHE`` (on/off), ``SCALESTACK_PLATFORM_BALANCING``
    (``haproxy`` or ``smart``).
    """
    profile = profile or os.environ.get("SCALESTACK_PROFILE", "dev")
    if profile not in PROFILE_PORT_OFFSET:
        raise ValueError(f"unknown profile {profile!r}; use one of {sorted(PROFILE_PORT_OFFSET)}")
    default_var = REPO / "var" if profile == "dev" else REPO / "var" / profile
    var = Path(os.environ.get("SCALESTACK_VAR", default_var)).resolve()
    # `scalestack scale` records the tier sizes it set, so every later command
    # (status, stop, a restart of the stack) sees the same topology.
    scale_file = var / SCALE_FILE
    scaled: dict[str, object] = json.loads(scale_file.read_text()) if scale_file.exists() else {}
    return Topology(
        profile=profile,
        var=var,
        offset=int(os.environ.get("SCALESTACK_PORT_OFFSET", PROFILE_PORT_OFFSET[profile])),
        web_servers=int(os.environ.get("SCALESTACK_WEB_SERVERS", scaled.get("web", 2))),  # type: ignore[arg-type]
        platform_servers=int(os.environ.get("SCALESTACK_PLATFORM_SERVERS", scaled.get("platform", 2))),  # type: ignore[arg-type]
        front_bind=os.environ.get("SCALESTACK_BIND", "127.0.0.1"),
        data_cache=_env_bool("SCALESTACK_DATA_CACHE", bool(scaled.get("data_cache", True))),
        platform_balancing=str(os.environ.get("SCALESTACK_PLATFORM_BALANCING", scaled.get("balancing", "haproxy"))),
        fault_injection=profile in FAST_PROFILES,
        # The test profiles bound lag tighter, so a test can push a replica out quickly.
        replica_max_lag=float(os.environ.get("SCALESTACK_REPLICA_MAX_LAG", 10 if profile == "dev" else 5)),
        # The test profiles also exempt 127.0.0.1, where every integration test
        # sends from; the rate-limit test sends from other loopback addresses,
        # against a lower limit so it trips quickly.
        rate_limit_exempt=(LOAD_GENERATOR_NETWORK,) if profile == "dev" else (LOAD_GENERATOR_NETWORK, "127.0.0.1"),
        rate_limit_requests=300 if profile == "dev" else 100,
    )
