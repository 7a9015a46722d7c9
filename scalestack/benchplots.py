"""One PNG per benchmark study (matplotlib, no display needed), from the figures it saved.

Each function takes a study's figures (``scalestack/benchstudies.py``) and a
path, draws, and returns the path. Colours follow the README's diagram where
it means something: blue for our code's path, red where infrastructure was
taken away.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

Figures = dict[str, Any]
BLUE, RED, GREY = "#1f77b4", "#d62728", "#7f7f7f"


def _latency_curves(axis: Any, curves: dict[str, list[Figures]]) -> None:
    """p50 (solid) and p99 (dashed) latency against the offered rate, one colour per arm.

    Against the offered rate, not the achieved one: past saturation the stack
    completes no more (or fewer) requests while latency climbs, and a curve
    drawn against achieved throughput would double back on itself.
    """
    for (name, points), colour in zip(curves.items(), (BLUE, RED, GREY)):
        x = [p["offered_rps"] for p in points]
        axis.plot(x, [p["p50_ms"] for p in points], "o-", color=colour, label=f"{name} p50")
        axis.plot(x, [p["p99_ms"] for p in points], "s--", color=colour, label=f"{name} p99")
    axis.set_xlabel("offered load (actions/s at a fixed arrival rate; a post or a vote is two requests)")
    axis.set_ylabel("latency (ms, log scale)")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()


def latency(figures: Figures, path: Path) -> Path:
    fig, axis = plt.subplots(figsize=(7, 4.5))
    _latency_curves(axis, {"stack": figures["points"]})
    axis.set_title("Latency against offered load (open loop)")
    return _save(fig, path)


def cache(figures: Figures, path: Path) -> Path:
    arms = figures["arms"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    _latency_curves(left, {name: arm["sweep"] for name, arm in arms.items()})
    left.set_title("Latency against offered load, data cache on vs off")
    names = list(arms)
    values = [arms[n]["capacity"]["throughput_rps"] for n in names]
    right.bar(names, values, color=[BLUE, RED])
    for i, v in enumerate(values):
        right.annotate(f"{v:.0f}", (i, v), ha="center", va="bottom")
    right.set_ylabel("capacity (requests/s, closed loop)")
    right.set_title("Capacity")
    return _save(fig, path)


def _arms(figures: Figures, path: Path, colours: list[str], unit: str, title: str) -> Path:
    """Capacity bars, and p50/p99 bars at the study's fixed open-loop rate, one pair per arm."""
    arms = figures["arms"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(arms)
    left.bar(names, [arms[n]["capacity"]["throughput_rps"] for n in names], color=colours[:len(names)])
    left.tick_params(axis="x", labelsize=8)
    left.set_ylabel("capacity (requests/s, closed loop)")
    left.set_title("Capacity")
    width = 0.35
    for i, key in enumerate(("p50_ms", "p99_ms")):
        right.bar([j + i * width for j in range(len(names))], [arms[n]["open"][key] for n in names], width,
                  label=key.removesuffix("_ms"), color=[BLUE, GREY][i])
    right.set_xticks([j + width / 2 for j in range(len(names))], names, fontsize=8)
    right.set_ylabel("latency (ms)")
    right.set_title(f"Latency at {figures['rate']} {unit}/s (open loop)")
    right.legend()
    fig.suptitle(title)
    return _save(fig, path)


def balance(figures: Figures, path: Path) -> Path:
    return _arms(figures, path, [RED, BLUE], "actions", "Web → platform: HAProxy's pool vs the smart client")


def scaling(figures: Figures, path: Path) -> Path:
    points, loss = figures["points"], figures["loss"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    n = [p["servers"] for p in points]
    rps = [p["throughput_rps"] for p in points]
    left.plot(n, [rps[0] * k for k in n], "--", color=GREY, label="linear (N × one server)")
    left.plot(n, rps, "o-", color=BLUE, label="measured")
    for k, r, p in zip(n, rps, points):
        left.annotate(f"{r:.0f} req/s ({p['efficiency']:.0%})", (k, r), textcoords="offset points",
                      xytext=(5, -12))
    left.set_xticks(n)
    left.set_xlabel(f"servers per tier ({figures['cpus_per_server']} CPU each)")
    left.set_ylabel("capacity (requests/s)")
    left.set_title("Horizontal scaling")
    left.set_ylim(bottom=0)
    left.legend()
    if loss:
        history = loss["history"]
        seconds = [h[0] for h in history[1:]]
        rates = [h[1] - prev[1] for prev, h in zip(history, history[1:])]
        right.plot(seconds, rates, color=BLUE)
        right.axvline(loss["lost_at"], color=RED, linestyle="--", label=f"{' and '.join(loss['lost'])} stopped")
        right.axhline(loss["before_rps"], color=GREY, linestyle=":", label=f"before {loss['before_rps']:.0f}")
        right.axhline(loss["after_rps"], color=RED, linestyle=":", label=f"after {loss['after_rps']:.0f}")
        right.set_xlabel("seconds")
        right.set_ylabel("requests completed per second")
        right.set_ylim(bottom=0)
        right.set_title(f"Losing one of {loss['servers']}: {loss['remaining']:.0%} remains, {loss['failures']} failed")
        right.legend()
    return _save(fig, path)


def baseline(figures: Figures, path: Path) -> Path:
    return _arms(figures, path, [BLUE, GREY, RED], "pages",
                     "The stack against one Django process on PostgreSQL and memcached")


def fanout(figures: Figures, path: Path) -> Path:
    points = figures["points"]
    fig, axis = plt.subplots(figsize=(7, 4.5))
    x = [p["followers"] for p in points]
    for key, style, label in (("visible_p50_ms", "o-", "half the followers"),
                              ("visible_p99_ms", "s--", "99 % of them"),
                              ("all_visible_ms", "^:", "all of them")):
        axis.plot(x, [p[key] for p in points], style, color=BLUE, label=label)
    axis.plot(x, [p["ack_p50_ms"] for p in points], "x-", color=GREY, label="the author's own wait: post to acknowledgement")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("followers of the author")
    axis.set_ylabel("ms (after the acknowledgement, but for the author's wait)")
    axis.set_title("Fan-out on write: when followers can see a post")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


PLOTS: dict[str, Callable[[Figures, Path], Path]] = {
    "latency": latency, "cache": cache, "balance": balance, "scaling": scaling, "baseline": baseline,
    "fanout": fanout,
}
