"""The stack's topology inside Docker Compose (``docker-compose.yml``).

The same tiers, templates and command lines as the native stack
(``scalestack/topology.py``), with three differences that come from running
each server in its own container:

- Every server is reached by its compose service name (``postgres``,
  ``memcached-1``, ``haproxy``) on its standard port, and listens on all of
  its container's addresses; the Docker networks decide who can reach it.
- The web and platform tiers are compose services that ``--scale`` can grow:
  HAProxy finds their containers through Docker's DNS (``server-template``
  and ``resolvers``) instead of a fixed list of servers.
- Secrets come from the environment (``.env``, see ``.env.example``), with
  development defaults, instead of a generated ``var/secrets.env``.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from scalestack.topology import FAST_PROFILES, LOAD_GENERATOR_NETWORK, Process, Topology

# Every container keeps its data, rendered configs and sockets here; the
# database and broker containers mount a named volume on it.
COMPOSE_VAR = Path("/var/lib/scalestack")
# Standard ports: a container has its own network namespace, so nothing clashes.
WEB_PORT = 8000
PLATFORM_PORT = 8000
POSTGRES_PORT = 5432
PGCHECK_PORT = 8008
MEMCACHED_PORT = 11211
RABBITMQ_PORT = 5672
RABBITMQ_MANAGEMENT_PORT = 15672
# server-template slots per scalable tier: `--scale web=N` works up to this N.
MAX_REPLICAS = 10

# The development defaults of .env.example. Anything published beyond this
# machine must override them in .env.
DEVELOPMENT_SECRETS = {
    "DJANGO_SECRET_KEY": "dev-only-django-secret-key-change-me-in-dot-env-0123456789",
    "PLATFORM_TOKEN": "dev-only-platform-token",
    "DATABASE_PASSWORD": "dev-only-database-password",
    "RABBITMQ_PASSWORD": "dev-only-rabbitmq-password",
    "REPLICATION_PASSWORD": "dev-only-replication-password",
    "HEALTH_PASSWORD": "dev-only-health-password",
    "HAPROXY_STATS_PASSWORD": "dev-only-stats-password",
}


@dataclass(frozen=True)
class ComposeTopology(Topology):
    """The topology as the containers see it (see the module docstring)."""

    discovery: bool = True
    internal_bind: str = "0.0.0.0"
    internal_host: str = "haproxy"
    front_bind: str = "0.0.0.0"
    # Loopback for pgcheck (it shares its server's network namespace), and
    # the compose networks' addresses.
    pg_client_networks: tuple[str, ...] = ("127.0.0.1/32", "samenet")
    run_as_root: bool = False
    max_replicas: int = MAX_REPLICAS
    # Where the host publishes the CDN edge: the pages link to it there.
    published_static_port: int = 8081

    @property
    def pg_superuser(self) -> str:
        """The PostgreSQL containers run as the ``postgres`` user (peer authentication)."""
        return "postgres"

    def bind_address(self, process: Process) -> str:
        """Containers listen on every address they have, on the process's port."""
        return f"{self.internal_bind}:{process.port}"

    @property
    def web(self) -> list[Process]:
        """The web service: however many containers ``--scale web=N`` runs."""
        return [Process("web", "web", WEB_PORT, host="web", pool="web")]

    @property
    def platform(self) -> list[Process]:
        """The platform service, scaled the same way."""
        return [Process("platform", "platform", PLATFORM_PORT, host="platform", pool="platform")]

    @property
    def memcached(self) -> list[Process]:
        """One compose service per memcached node (the client hashes keys over them)."""
        return [Process(f"memcached-{i}", "memcached", MEMCACHED_PORT, host=f"memcached-{i}")
                for i in range(1, self.memcached_nodes + 1)]

    @property
    def postgres(self) -> Process:
        """The primary's service."""
        return Process("postgres", "postgres", POSTGRES_PORT, host="postgres", pool="db")

    @property
    def postgres_replica(self) -> Process:
        """The streaming replica's service."""
        return Process("postgres-replica", "postgres", POSTGRES_PORT, host="postgres-replica", pool="db")

    def pgcheck_for(self, server: Process) -> Process:
        """pgcheck runs in its server's network namespace, so HAProxy checks ``server:8008``
        and pgcheck reaches its server on 127.0.0.1, as natively."""
        return Process(f"pgcheck-{server.name}", "pgcheck", PGCHECK_PORT, host=server.host)

    @property
    def haproxy(self) -> Process:
        """The front door and the internal pools, all in one container."""
        return Process("haproxy", "haproxy", self.front_port, host="haproxy")

    @property
    def static_origin(self) -> Process:
        """The static host, reachable only from the edge (the ``cdn`` network)."""
        return Process("static-origin", "static-origin", self.static_origin_port, host="static-origin")

    @property
    def cdn_edge(self) -> Process:
        """The CDN edge, published on the host."""
        return Process("cdn-edge", "cdn-edge", self.static_port, host="cdn-edge")

    @property
    def rabbitmq(self) -> Process:
        """The broker's service."""
        return Process("rabbitmq", "rabbitmq", RABBITMQ_PORT, host="rabbitmq")

    @property
    def rabbitmq_management_port(self) -> int:
        """The management API, inside the back network only."""
        return RABBITMQ_MANAGEMENT_PORT

    @property
    def rabbitmq_nodename(self) -> str:
        """One node per container; its short name resolves inside it."""
        return "rabbit@localhost"

    @property
    def static_url(self) -> str:
        """The static host as a browser on the host machine reaches it."""
        return f"http://localhost:{self.published_static_port}/static/"

    @property
    def media_url(self) -> str:
        """User uploads, through the edge as the host publishes it."""
        return f"http://localhost:{self.published_static_port}/media/"

    def nginx_logs(self, process: Process) -> tuple[str, str]:
        """Containers log to their standard streams, for ``docker compose logs``."""
        return "/dev/stdout", "/dev/stderr"

    @property
    def stats_password(self) -> str | None:
        """The stats page is published on the host, so it asks for a password."""
        return self.secrets()["HAPROXY_STATS_PASSWORD"]

    def platform_env(self, process: Process | None = None) -> dict[str, str]:
        """As natively, and the web tier calls the platform as ``haproxy:9000``."""
        return {**super().platform_env(process), "DJANGO_ALLOWED_HOSTS": "haproxy,platform,localhost,127.0.0.1"}

    def secrets(self) -> dict[str, str]:
        """From the environment (``.env``), with the development defaults."""
        return {key: os.environ.get(key) or default for key, default in DEVELOPMENT_SECRETS.items()}

    def this_process(self, role: str, name: str | None = None) -> Process:
        """The process this container runs. A scaled replica is named after its
        container (``web-3f2a9c1d0e4b``), so pages and logs say which one answered."""
        if role in ("web", "platform"):
            service = self.web[0] if role == "web" else self.platform[0]
            return Process(f"{role}-{socket.gethostname()}", role, service.port, host=service.host, pool=role)
        if role in ("consumer", "worker", "beat"):
            return Process(name or f"{role}-{socket.gethostname()}", role, None)
        return self.get(name or role)


def load() -> ComposeTopology:
    """The compose topology, configured by the containers' environment."""
    profile = os.environ.get("SCALESTACK_PROFILE", "dev")
    exempt = os.environ.get("SCALESTACK_RATE_LIMIT_EXEMPT", LOAD_GENERATOR_NETWORK)
    return ComposeTopology(
        profile=profile,
        var=COMPOSE_VAR,
        offset=0,
        data_cache=os.environ.get("SCALESTACK_DATA_CACHE", "on").lower() in ("1", "true", "yes", "on"),
        fault_injection=profile in FAST_PROFILES,
        replica_max_lag=float(os.environ.get("SCALESTACK_REPLICA_MAX_LAG", 10)),
        rate_limit_requests=int(os.environ.get("SCALESTACK_RATE_LIMIT_REQUESTS", 300)),
        rate_limit_exempt=tuple(exempt.split()),
        published_static_port=int(os.environ.get("SCALESTACK_STATIC_PORT") or 8081),
    )
