"""Bar charts drawn on the server as inline SVG: no JavaScript, no chart library.

Post, "Caching" (precalculated results): the analytics page draws the rollups
that periodic tasks computed, so drawing is all that is left to do per request.

Every piece of text in a chart goes through ``format_html``, which escapes it:
domain names come from ``Referer`` headers, which anyone can set, so a
"domain" such as ``<script>`` or ``"><svg onload=...>`` must come out as text.
Numbers are formatted to strings before they are placed (``format_html``
escapes its arguments to strings first, so a format spec such as ``{:02d}``
would fail). Colours come from classes styled in ``site.css``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from news_web.platform_models import DomainCount, HourCount

# Domain labels longer than this are cut (with an ellipsis) in the chart; the
# full name stays in the bar's tooltip and in the table below the chart.
LABEL_CHARS = 21


def _num(value: float) -> str:
    """A coordinate as short text (SVG needs no more than one decimal here)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def domain_bars(rows: Sequence[DomainCount], *, title: str, width: int = 420) -> SafeString:
    """A horizontal bar per domain: label on the left, bar, visit count on the right.

    The first bar is the longest: ``rows`` come best first from the platform.
    The default width suits two charts side by side in the page's column.
    """
    row_height, label_width, value_width = 22, 160, 44
    bar_space = width - label_width - value_width
    height = row_height * len(rows) + 4
    most = max((row.visits for row in rows), default=0) or 1
    bars = []
    for index, row in enumerate(rows):
        y = 2 + index * row_height
        bar = max(row.visits / most * bar_space, 1.0)
        bars.append(
            format_html(
                '<g class="row"><title>{}: {} visit{}</title>'
                '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>'
                '<rect class="bar" x="{}" y="{}" width="{}" height="{}" rx="2"></rect>'
                '<text class="value" x="{}" y="{}">{}</text></g>',
                row.label,
                row.visits,
                "" if row.visits == 1 else "s",
                label_width - 8,
                _num(y + row_height * 0.68),
                _short(row.label),
                label_width,
                _num(y + 3),
                _num(bar),
                row_height - 6,
                _num(label_width + bar + 6),
                _num(y + row_height * 0.68),
                row.visits,
            )
        )
    return format_html(
        '<svg class="chart domains" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
        'xmlns="http://www.w3.org/2000/svg">{}</svg>',
        title,
        width,
        height,
        width,
        height,
        mark_safe("".join(bars)),  # each bar was built by format_html above
    )


def hourly_bars(
    hours: Sequence[HourCount], *, title: str, now_hour: int | None = None, width: int = 560, height: int = 96
) -> SafeString:
    """A column per hour of the day (UTC), with hour marks every six hours.

    ``now_hour`` marks the hours after it as still to come (drawn lighter), so
    a partial day does not read as a quiet evening.
    """
    axis_height = 16
    plot_height = height - axis_height
    slot = width / 24
    most = max((hour.visits for hour in hours), default=0) or 1
    columns = []
    for hour in hours:
        bar = hour.visits / most * (plot_height - 4)
        future = now_hour is not None and hour.hour > now_hour
        columns.append(
            format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="{}">'
                "<title>{}:00–{}:00 UTC: {} visit{}</title></rect>",
                "bar future" if future else "bar",
                _num(hour.hour * slot + 1),
                _num(plot_height - bar),
                _num(slot - 2),
                _num(bar),
                f"{hour.hour:02d}",
                f"{(hour.hour + 1) % 24:02d}",
                hour.visits,
                "" if hour.visits == 1 else "s",
            )
        )
    ticks = format_html_join(
        "",
        '<text class="tick" x="{}" y="{}">{}h</text>',
        ((_num(h * slot + 1), height - 3, f"{h:02d}") for h in (0, 6, 12, 18)),
    )
    return format_html(
        '<svg class="chart hours" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
        'xmlns="http://www.w3.org/2000/svg">'
        '<line class="axis" x1="0" y1="{}" x2="{}" y2="{}"></line>{}{}</svg>',
        title,
        width,
        height,
        width,
        height,
        plot_height,
        width,
        plot_height,
        mark_safe("".join(columns)),  # each column was built by format_html above
        ticks,
    )
