"""What the CDN edge buys: a cache hit at the edge against the same file from the origin.

Run against a running stack (``make up``, or ``SCALESTACK_PROFILE=test``):

    .venv/bin/python bench/cdn.py [--requests 500] [--path /static/...]

It fetches one asset ``--requests`` times over one keep-alive connection from
the edge (every request a HIT after the first) and from the origin directly,
and prints the latency percentiles and the rate of each. One connection and
one request at a time on purpose: this measures the latency of a hit, not how
much load either server takes (issue 7's harness measures load). Then it loads
the front page the way a browser does (the page, then every asset it links),
with the edge warm, and prints the share of the bytes the edge served.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scalestack.topology import load  # noqa: E402


def _timings(session: requests.Session, url: str, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=10)
        response.raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _lines(path: Path) -> int:
    """Requests in an nginx access log so far (nginx writes each line as the request ends)."""
    return sum(1 for _ in path.open()) if path.exists() else 0


def _describe(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p50 = statistics.median(ordered)
    p99 = ordered[max(0, round(0.99 * len(ordered)) - 1)]
    rate = len(ordered) / (sum(ordered) / 1000)
    return f"{name:<28} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   {rate:7.0f} req/s (one connection)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--path", help="an asset path (default: the front page's stylesheet)")
    args = parser.parse_args()
    t = load()
    site = f"http://127.0.0.1:{t.front_port}"
    html = requests.get(site + "/", timeout=10).text
    path = args.path
    if path is None:
        match = re.search(rf'href="{re.escape(t.static_url)}([^"]+\.css)"', html)
        if not match:
            print("the front page links no stylesheet on the edge", file=sys.stderr)
            return 1
        path = "/static/" + match.group(1)
    edge = f"http://127.0.0.1:{t.static_port}{path}"
    origin = f"http://127.0.0.1:{t.static_origin_port}{path}"
    origin_log = Path(t.nginx_logs(t.static_origin)[0])
    with requests.Session() as session:
        first = session.get(edge, timeout=10)
        size = len(first.content)
        print(f"{path}: {size} bytes; first request at the edge: {first.headers.get('X-Cache-Status')}")
        before = _lines(origin_log)
        edge_ms = _timings(session, edge, args.requests)
        reached_origin = _lines(origin_log) - before
        statuses = {session.get(edge, timeout=10).headers.get("X-Cache-Status")}
    with requests.Session() as session:
        origin_ms = _timings(session, origin, args.requests)
    print(_describe(f"edge ({'/'.join(sorted(s or '-' for s in statuses))})", edge_ms))
    print(_describe("origin (no cache)", origin_ms))
    print(f"requests that reached the origin during the {args.requests} edge requests: {reached_origin}")
    print(f"edge hit p50 / origin p50: {statistics.median(edge_ms) / statistics.median(origin_ms):.2f}")

    # The front page as a browser loads it, edge warm: whose bytes?
    page = requests.get(site + "/", timeout=10)
    links = re.findall(r'(?:href|src)="(http://localhost:\d+/(?:static|media)/[^"]+)"', page.text)
    edge_bytes = 0
    for link in links:
        edge_bytes += len(requests.get(link.replace("localhost", "127.0.0.1"), timeout=10).content)
    total = edge_bytes + len(page.content)
    print(f"front page: {len(page.content)} bytes of HTML from the web tier, {len(links)} assets "
          f"({edge_bytes} bytes) from the edge: the edge served {edge_bytes / total:.0%} of the bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
