#!/usr/bin/env python3
"""Django's command-line utility for the platform service.

Only ``platform/`` goes on ``sys.path`` (never the repository root), because the
repository's ``platform/`` folder would otherwise shadow the standard library's
``platform`` module that Django and Celery import.
"""
import os
import sys
from pathlib import Path


def main() -> None:
    """Run a Django management command with the platform's settings."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_api.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
