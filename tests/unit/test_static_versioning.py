"""A deploy that changes an asset changes its URL, so the CDN edge never needs a purge.

``collectstatic`` runs twice, as two deploys would: once with the site's own
stylesheet, once with a changed copy in front of it. ManifestStaticFilesStorage
names each file by its content, and pages link the name from the manifest.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scalestack.topology import REPO

SITE_CSS = REPO / "webapp" / "news_web" / "static" / "news_web" / "site.css"


def _deploy(tmp_path: Path, name: str, css: str | None) -> dict[str, str]:
    """Collect the static files (with ``css`` as the stylesheet, if given); return the manifest."""
    root = tmp_path / name
    settings = tmp_path / f"deploy_{name}.py"
    overrides = ""
    if css is not None:
        # STATICFILES_DIRS come before the app's own folder, like a changed file in a new release.
        changed = tmp_path / f"changed_{name}"
        (changed / "news_web").mkdir(parents=True)
        (changed / "news_web" / "site.css").write_text(css)
        overrides = f"STATICFILES_DIRS = [{str(changed)!r}]\n"
    settings.write_text(f"from news_web.settings import *  # noqa: F403\nSTATIC_ROOT = {str(root)!r}\n{overrides}")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": f"deploy_{name}", "DJANGO_SECRET_KEY": "x" * 50,
           "PLATFORM_TOKEN": "unused", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "webapp")])}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                   cwd=REPO / "webapp", env=env, check=True, capture_output=True)
    return json.loads((root / "staticfiles.json").read_text())["paths"]


def test_a_changed_stylesheet_gets_a_new_url_and_an_unchanged_one_keeps_its_url(tmp_path: Path) -> None:
    first = _deploy(tmp_path, "first", None)
    same = _deploy(tmp_path, "same", SITE_CSS.read_text())
    changed = _deploy(tmp_path, "changed", SITE_CSS.read_text() + "\n.new-rule { color: teal; }\n")
    name = "news_web/site.css"
    assert first[name].startswith("news_web/site.") and first[name] != name
    assert same[name] == first[name]
    assert changed[name] != first[name]
    # Assets that did not change keep their URLs (and their copies at the edge).
    assert changed["news_web/avatar-default.svg"] == first["news_web/avatar-default.svg"]
