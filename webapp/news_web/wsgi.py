"""WSGI entry point for gunicorn: ``gunicorn --chdir webapp news_web.wsgi``.

Post, "Load balancing": each web server process (web-1, web-2, ...) runs this
same application; they differ only in ``SCALESTACK_SERVER_NAME`` and port.
"""

from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "news_web.settings")

application: WSGIHandler = get_wsgi_application()
