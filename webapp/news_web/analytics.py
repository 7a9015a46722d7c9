"""The analytics page: visits per referring domain, today and the day before, drawn as SVG.

Post, "Scheduling periodic tasks": "you want to create daily rollups of
analytics". Every figure here was precalculated by the hourly and daily rollup
tasks from the click log that the click consumer wrote; the page only asks the
platform for two days of rollups and draws them. Days are UTC days, and
today's figures are partial: they grow as the hourly rollups run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString
from django.views.decorators.http import require_safe

from news_web import charts, platform_client
from news_web.middleware import error_page
from news_web.platform_models import DomainCount, DomainVisits

# Bars in a domain chart; the table below it lists every domain the platform sent.
CHART_ROWS = 10
# The platform's range of days (platform_api/offline_schemas.py), one day in
# from the start because the page also shows the day before.
MIN_DAY = date(1970, 1, 2)
MAX_DAY = date(9999, 12, 30)
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class DayReport:
    """One day's rollup with what the template needs to show it."""

    heading: str
    visits: DomainVisits
    chart: SafeString | None
    rows: list[tuple[DomainCount, str]]  # each domain with its share, e.g. "12.5%"
    partial: bool


def utc_today() -> date:
    """Today in UTC, the calendar the rollups use."""
    return datetime.now(UTC).date()


def requested_day(raw: str | None) -> date | None:
    """The ``?day=YYYY-MM-DD`` asked for, today when absent, ``None`` when malformed or out of range."""
    if raw is None or raw == "":
        return utc_today()
    if not _DAY_RE.fullmatch(raw):
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return day if MIN_DAY <= day <= MAX_DAY else None


def _report(heading: str, visits: DomainVisits, today: date) -> DayReport:
    """Chart and table rows for one day."""
    chart = None
    if visits.domains:
        chart = charts.domain_bars(visits.domains[:CHART_ROWS], title=f"Visits per referring domain, {heading}")
    total = visits.total or 1
    rows = [(row, f"{row.visits / total * 100:.1f}%") for row in visits.domains]
    return DayReport(heading=heading, visits=visits, chart=chart, rows=rows, partial=visits.day >= today)


def _heading(day: date, today: date) -> str:
    if day == today:
        return f"Today, {day.isoformat()}"
    if day == today - timedelta(days=1):
        return f"Yesterday, {day.isoformat()}"
    return day.isoformat()


@require_safe
def analytics(request: HttpRequest) -> HttpResponse:
    """Two days of referrer rollups (``?day=`` and the day before), and the first day's hours."""
    day = requested_day(request.GET.get("day"))
    if day is None:
        return error_page(request, 400, "Bad date", "Give the day as YYYY-MM-DD, for example 2024-05-06.")
    today = utc_today()
    client = platform_client.get_client()
    days = [day, day - timedelta(days=1)]
    reports = [_report(_heading(d, today), client.domain_visits(d), today) for d in days]
    first = reports[0].visits
    hourly = charts.hourly_bars(
        first.hours,
        title=f"Visits per hour (UTC), {reports[0].heading}",
        now_hour=datetime.now(UTC).hour if day == today else None,
    )
    context = {
        "reports": reports,
        "hourly": hourly,
        "hourly_total": sum(hour.visits for hour in first.hours),
        "day": day,
        "earlier": day - timedelta(days=1) if day > MIN_DAY else None,
        "later": day + timedelta(days=1) if day < today else None,
    }
    return render(request, "news_web/analytics.html", context)
