"""The benchmark studies' own arithmetic, tables and plots, on figures made up for the purpose.

The studies themselves run against a real stack (tests/integration/test_bench.py);
here: the parsing of Locust's CSV files, the windows of a run's history, when
an open-loop step counts as saturated, which rate two arms are compared at,
and that every study's table and PNG can be made from its figures.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from scalestack import bench, benchplots, benchstudies


def _run(**changes: object) -> dict:
    figures = {"label": "x", "loop": "open", "offered_rps": 10, "throughput_rps": 10.0, "requests": 100,
               "failures": 0, "p50_ms": 20.0, "p95_ms": 40.0, "p99_ms": 80.0, "cache_hit_ratio": 0.9,
               "dropped": 0, "generator_lag_p99_ms": 1.0, "cpu_ms_per_request": 12.0,
               "cpu_share": {"web": 0.5, "platform": 0.5}, "failure_reasons": {}}
    return {**figures, **changes}


def _result(**changes: object) -> bench.BenchResult:
    fields = dict(started="2026-11-26T13:00:00+00:00", profile="test", seconds=10.0, users=4, requests=100,
                  failures=0, throughput_rps=10.0, p50_ms=20.0, p95_ms=40.0, p99_ms=80.0, max_ms=90.0,
                  cache_hit_ratio=0.9, cpu_share={}, cpu_seconds={})
    return bench.BenchResult(**{**fields, **changes})


def test_history_rows_are_read_from_locusts_aggregated_lines(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        '"Timestamp","User Count","Type","Name","Requests/s","Failures/s","Total Request Count","Total Failure Count"\n'
        '1764162000,4,"","Aggregated",0,0,0,0\n'
        '1764162001,4,"GET","/home",3,0,3,0\n'
        '1764162001,4,"","Aggregated",10,0,10,0\n'
        '1764162003,4,"","Aggregated",12,1,34,1\n')
    start, rows = bench._locust_history(path)
    assert start == 1764162000.0
    assert rows == [(0.0, 0, 0), (1.0, 10, 0), (3.0, 34, 1)]
    assert bench._locust_history(tmp_path / "missing.csv") == (0.0, [])


def test_failures_are_counted_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "failures.csv"
    path.write_text('Method,Name,Error,Occurrences\nGET,home timeline,503,2\nPOST,post,302 /login,1\n')
    assert bench._locust_failures(path) == {"GET home timeline: 503": 2, "POST post: 302 /login": 1}


def test_a_window_rate_is_requests_completed_over_the_seconds_between_its_rows() -> None:
    result = _result(history=[(0.0, 0, 0), (1.0, 10, 0), (2.0, 30, 0), (3.0, 50, 0), (4.0, 55, 0)])
    assert result.window_rps(1, 3) == pytest.approx(20.0)  # (50 - 10) / 2
    assert result.window_rps(3, 4) == pytest.approx(5.0)
    assert result.window_rps(3.5, 4) == 0.0  # one row: no interval to measure


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, False),
    ({"dropped": 1}, True),
    ({"failures": 2, "requests": 100}, True),
    ({"failures": 1, "requests": 100}, False),
    ({"p99_ms": 5001.0}, True),
])
def test_an_open_loop_step_is_saturated_when_it_drops_fails_or_queues(changes: dict, expected: bool) -> None:
    assert benchstudies.saturated(_run(**changes)) is expected


def test_two_arms_are_compared_at_the_highest_rate_both_sustained() -> None:
    on = [_run(offered_rps=r) for r in (10, 20, 30)]
    off = [_run(offered_rps=10), _run(offered_rps=20), _run(offered_rps=30, failures=5)]
    assert benchstudies._shared_rate(on, off) == 20
    assert benchstudies._at(20, off, on, "p50_ms") == (20.0, 20.0)
    assert benchstudies._shared_rate(on, [_run(offered_rps=10, p99_ms=9000.0)]) is None


def test_a_ratio_needs_both_figures() -> None:
    assert benchstudies._ratio(30, 10) == 3.0
    assert benchstudies._ratio(None, 10) is None
    assert benchstudies._ratio(10, 0) is None


def _figures() -> dict[str, dict]:
    sweep = [_run(label=f"a @{r}/s", offered_rps=r, throughput_rps=r * 1.1) for r in (10, 20)]
    arm = {"capacity": _run(label="capacity", loop="closed"), "open": _run(label="open"), "sweep": sweep}
    loss = {**_run(loop="closed"), "servers": 4, "lost": ["web-4", "platform-4"], "before_rps": 40.0,
            "after_rps": 30.0, "remaining": 0.75, "history": [(0.0, 0, 0), (1.0, 40, 0), (2.0, 70, 0)],
            "lost_at": 1.0}
    scaling = [{**_run(loop="closed", throughput_rps=10.0 * n * 0.9), "servers": n, "efficiency": 0.9}
               for n in (1, 2, 4)]
    fanout = [{"followers": n, "posts": 2, "ack_p50_ms": 30.0, "visible_p50_ms": n / 10, "visible_p99_ms": n / 5,
               "all_visible_ms": n / 4, "api_visible_ms": n / 3} for n in (10, 1000, 10000)]
    return {
        "latency": {"study": "latency", "points": sweep},
        "cache": {"study": "cache", "arms": {"cache on": arm, "cache off": arm}, "ratios": {"capacity (on/off)": 2.0}},
        "balance": {"study": "balance", "rate": 30, "arms": {"haproxy": arm, "smart": arm}, "ratios": {"x": None}},
        "baseline": {"study": "baseline", "rate": 20, "arms": {"stack": arm, "baseline (30 s page cache)": arm,
                                                               "baseline (no cache)": arm}, "ratios": {"x": 1.0}},
        "scaling": {"study": "scaling", "cpus_per_server": 0.1, "points": scaling, "loss": loss},
        "fanout": {"study": "fanout", "points": fanout},
    }


@pytest.mark.parametrize("study", sorted(benchstudies.STUDIES))
def test_every_study_has_a_table_and_a_plot(study: str, tmp_path: Path) -> None:
    figures = _figures()[study]
    tables = benchstudies.tables(figures)
    assert tables
    for title, rows in tables:
        assert title and len(rows) >= 2
        assert all(len(row) == len(rows[0]) for row in rows), title
    png = benchplots.PLOTS[study](figures, tmp_path / f"{study}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_scaling_table_shows_efficiency_and_the_loss() -> None:
    (_, rows), (loss_title, loss_rows) = benchstudies.tables(_figures()["scaling"])
    assert rows[1][:3] == ["1", "9.0", "90%"]
    assert loss_title == "one of 4 lost under load"
    assert loss_rows[1][2] == "75%"


def test_every_study_has_a_quick_form_and_a_plot() -> None:
    assert set(benchstudies.QUICK) == set(benchstudies.STUDIES) == set(benchplots.PLOTS)


def test_the_stack_is_compared_with_each_baseline() -> None:
    arms = {"stack": {"capacity": _run(throughput_rps=60.0, cpu_ms_per_request=24.0), "open": _run(p50_ms=20.0)},
            "baseline (no cache)": {"capacity": _run(throughput_rps=30.0, cpu_ms_per_request=12.0),
                                    "open": _run(p50_ms=10.0)}}
    ratios = benchstudies.baseline_ratios(arms, 20)
    assert ratios == {"capacity, stack/baseline (no cache)": 2.0, "p50 at 20/s, stack/baseline (no cache)": 2.0,
                      "p99 at 20/s, stack/baseline (no cache)": 1.0, "CPU per request, stack/baseline (no cache)": 2.0}
