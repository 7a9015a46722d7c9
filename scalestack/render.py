"""Render every config file of the stack from the topology with Jinja2.

The templates live beside the role they configure (``haproxy/``, ``nginx/``,
``supervisor/``, ``postgres/``); the rendered copies go to ``var/etc`` and are
never edited by hand.
"""
from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import jinja2

from scalestack.commands import PG_BIN, command, workers_per_server
from scalestack.smartclient_config import write_platform_servers_file
from scalestack.topology import REPO, Process, Topology


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(REPO)),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def env_line(values: dict[str, str]) -> str:
    """A supervisord ``environment=`` value: ``KEY="value",...`` with ``%`` escaped."""
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'

    return ",".join(f"{key}={quote(value)}" for key, value in values.items())


def supervisor_command(t: Topology, process: Process) -> str:
    """A process's command line as supervisord reads it (shell quoting, ``%`` doubled)."""
    return shlex.join(command(t, process).argv).replace("%", "%%")


def render_template(name: str, t: Topology, **extra: object) -> str:
    """Render one template (a path relative to the repository) for ``t``."""
    return _env.get_template(name).render(
        **extra,
        t=t,
        command_line=lambda process: supervisor_command(t, process),
        command_dir=lambda process: command(t, process).cwd,
        repo=REPO,
        venv=Path(sys.prefix),
        pg_bin=PG_BIN,
        env_line=env_line,
        workers=workers_per_server(),
        shlex=shlex,
        rabbitmq_env=rabbitmq_env(t),
    )


def rabbitmq_env(t: Topology) -> dict[str, str]:
    """The environment that makes ``rabbitmq-server`` a private node of this profile."""
    base = t.rabbitmq_base
    env = {
        "RABBITMQ_NODENAME": t.rabbitmq_nodename,
        "RABBITMQ_NODE_IP_ADDRESS": t.internal_bind,
        "RABBITMQ_NODE_PORT": str(t.rabbitmq.port),
        "RABBITMQ_DIST_PORT": str(t.rabbitmq_dist_port),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(t.etc / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(t.etc / "enabled_plugins"),
    }
    if t.run_as_root:
        # The Erlang cookie lives in the rabbitmq user's home.
        env["HOME"] = "/var/lib/rabbitmq"
    return env


def render_all(t: Topology) -> dict[str, Path]:
    """Write every rendered config under ``var/etc``; return them by name."""
    nginx_temp = [t.var / "tmp" / "nginx" / p.name for p in (t.static_origin, t.cdn_edge)]
    for folder in (t.etc, t.log, t.run, *nginx_temp, t.static_root, t.media_root, t.edge_cache.parent):
        folder.mkdir(parents=True, exist_ok=True)
    # Each rendered file: (template, target, the process it configures).
    outputs = {
        "haproxy": ("haproxy/haproxy.cfg.j2", t.etc / "haproxy.cfg", t.haproxy),
        "supervisord": ("supervisor/supervisord.conf.j2", t.supervisor_conf, None),
        "static-origin": ("nginx/static-origin.conf.j2", t.etc / "static-origin.conf", t.static_origin),
        "cdn-edge": ("nginx/cdn-edge.conf.j2", t.etc / "cdn-edge.conf", t.cdn_edge),
        "postgresql": ("postgres/postgresql.conf.j2", t.pg_conf_of(t.postgres), t.postgres),
        "postgresql_replica": ("postgres/postgresql.conf.j2", t.pg_conf_of(t.postgres_replica), t.postgres_replica),
        "pg_hba": ("postgres/pg_hba.conf.j2", t.etc / "pg_hba.conf", t.postgres),
        "rabbitmq": ("rabbitmq/rabbitmq.conf.j2", t.etc / "rabbitmq.conf", t.rabbitmq),
        "rabbitmq_plugins": ("rabbitmq/enabled_plugins.j2", t.etc / "enabled_plugins", t.rabbitmq),
    }
    written: dict[str, Path] = {}
    for key, (template, target, server) in outputs.items():
        text = render_template(template, t, server=server)
        # Write to a temporary file and rename, so a process reading the config
        # (an HAProxy reload, say) never sees half of it.
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text)
        # The supervisord and RabbitMQ configs hold secrets. RabbitMQ reads its
        # config as the rabbitmq user, so that file is handed to it.
        tmp.chmod(0o600 if key in ("supervisord", "rabbitmq") else 0o644)
        if key == "rabbitmq" and t.run_as_root:
            shutil.chown(tmp, "rabbitmq", "rabbitmq")
        tmp.replace(target)
        written[key] = target
    written["platform_servers"] = write_platform_servers_file(t)
    return written
