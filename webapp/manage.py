#!/usr/bin/env python
"""Django's command-line utility for the web tier (news_web).

It puts ``webapp/`` on ``sys.path``, never the repository root: the root holds a
``platform/`` folder that must not be confused with the standard library's
``platform`` module, which Django imports.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WEBAPP_DIR = Path(__file__).resolve().parent


def main() -> None:
    """Run a management command with ``news_web.settings`` unless told otherwise."""
    # Python puts this script's folder (webapp/) first already; make sure of it,
    # and drop the repository root if something (PYTHONPATH, -m) added it.
    repo_root = str(WEBAPP_DIR.parent)
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != repo_root]
    if str(WEBAPP_DIR) not in sys.path:
        sys.path.insert(0, str(WEBAPP_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "news_web.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
