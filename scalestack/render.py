"""Render every config file of the stack from the topology with Jinja2.

The templates live beside the role they configure (``haproxy/``, ``nginx/``,
``supervisor/``, ``postgres/``); the rendered copies go to ``var/etc`` and are
never edited by hand.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import jinja2

from scalestack.topology import REPO, Topology

PG_BIN = Path("/usr/lib/postgresql/15/bin")

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


def workers_per_server() -> int:
    """gunicorn workers per web or platform server (threads handle I/O waits)."""
    return int(os.environ.get("SCALESTACK_WORKERS", 2))


def render_template(name: str, t: Topology) -> str:
    """Render one template (a path relative to the repository) for ``t``."""
    return _env.get_template(name).render(
        t=t,
        repo=REPO,
        venv=Path(sys.prefix),
        pg_bin=PG_BIN,
        env_line=env_line,
        workers=workers_per_server(),
        shlex=shlex,
    )


def render_all(t: Topology) -> dict[str, Path]:
    """Write every rendered config under ``var/etc``; return them by name."""
    for folder in (t.etc, t.log, t.run, t.var / "tmp" / "nginx", t.static_root):
        folder.mkdir(parents=True, exist_ok=True)
    outputs = {
        "haproxy": ("haproxy/haproxy.cfg.j2", t.etc / "haproxy.cfg"),
        "supervisord": ("supervisor/supervisord.conf.j2", t.supervisor_conf),
        "static": ("nginx/static.conf.j2", t.etc / "static.conf"),
        "postgresql": ("postgres/postgresql.conf.j2", t.etc / "postgresql.conf"),
        "pg_hba": ("postgres/pg_hba.conf.j2", t.etc / "pg_hba.conf"),
    }
    written: dict[str, Path] = {}
    for key, (template, target) in outputs.items():
        text = render_template(template, t)
        # Write to a temporary file and rename, so a process reading the config
        # (an HAProxy reload, say) never sees half of it.
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text)
        tmp.chmod(0o644 if key != "supervisord" else 0o600)
        tmp.replace(target)
        written[key] = target
    return written
