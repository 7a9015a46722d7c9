"""The smart client's view of the topology: the platform servers as a JSON file.

Post, "Smart clients": a smart client "takes a pool of service hosts". In
``smart`` mode the web servers read that pool from this file
(``PLATFORM_SERVERS_FILE``, see ``webapp/news_web/smart_client.py``). It is
written from the same topology as the HAProxy config, so scaling the platform
tier re-renders both, and running web servers pick up added hosts when the
file's modification time changes, without a restart.
"""
from __future__ import annotations

import json
from pathlib import Path

from scalestack.topology import Topology


def platform_servers(t: Topology) -> list[dict[str, str]]:
    """``[{"name": "platform-1", "url": "http://127.0.0.1:8201"}, ...]`` for ``t``."""
    return [{"name": p.name, "url": f"http://{p.address}"} for p in t.platform]


def write_platform_servers_file(t: Topology) -> Path:
    """Write ``t.etc / "platform-servers.json"`` and return its path.

    The new file is renamed over the old one, so a web server reading it never
    sees half a list.
    """
    target = t.platform_servers_file
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps({"servers": platform_servers(t)}, indent=2) + "\n")
    tmp.chmod(0o644)
    tmp.replace(target)
    return target
