"""Export my data: schedule it, show a job page that polls itself, then offer the file.

Post, "Message queues", the first way of dividing the work: "perform almost no
work in the consumer (merely scheduling a task) and inform your user that the
task will occur offline, usually with a polling mechanism to update the
interface once the task is complete". The POST only asks the platform to
schedule a Celery task and answers with a redirect to the job's page; that page
reloads itself every two seconds (a ``<meta http-equiv="refresh">``, no
JavaScript) until the job is done, then links the download.
"""

from __future__ import annotations

import re
import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from news_web import idempotency, platform_client
from news_web.auth import logged_in_user, login_required

# Seconds between reloads of a job page while the job is pending or running.
REFRESH_SECONDS = 2


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def export(request: HttpRequest) -> HttpResponse:
    """GET: the page with the button. POST: schedule the export and go to its job page."""
    me = logged_in_user(request)
    if request.method != "POST":
        return render(request, "news_web/export.html")
    job = platform_client.get_client().start_export(me.id, idempotency_key=idempotency.form_key(request))
    return redirect("export_job", job_id=job.id)


@require_safe
@login_required
@never_cache
def export_job(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """The job's state and progress; it refreshes itself while the job may still change.

    Someone else's job is a 404: the platform only finds jobs of the user asking.
    """
    me = logged_in_user(request)
    job = platform_client.get_client().export_job(me.id, job_id)
    context = {"job": job, "refresh_seconds": REFRESH_SECONDS if job.is_active else None}
    return render(request, "news_web/export_job.html", context)


def export_filename(username: str) -> str:
    """``scalestack-export-<username>.json``, with anything unexpected in the name replaced."""
    return f"scalestack-export-{re.sub(r'[^A-Za-z0-9_-]', '_', username)}.json"


@require_safe
@login_required
@never_cache
def export_download(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """The finished export as a JSON attachment; a 409 page while it is not done.

    The document is passed through as the platform sent it, not parsed and
    re-encoded. ``never_cache`` (``Cache-Control: private, no-store``) keeps
    this personal data out of shared caches.
    """
    me = logged_in_user(request)
    document = platform_client.get_client().export_document(me.id, job_id)
    response = HttpResponse(document, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, export_filename(me.username))
    return response
