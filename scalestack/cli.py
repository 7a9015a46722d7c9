"""``scalestack``: run, inspect and break the stack.

    scalestack run            start everything, follow the logs; Ctrl-C stops it all
    scalestack up | down      the same stack, in the background
    scalestack status         every process with its state, pid and port
    scalestack stop NAME      stop one process (web-1, platform-2, memcached-1, ...)
    scalestack start NAME     start it again
    scalestack drain NAME     take a web/platform server out of HAProxy's pool gracefully
    scalestack ready NAME     put it back
    scalestack scale web=3    resize a tier without dropping a request
    scalestack balance smart  web tier → platform through the smart client (or: haproxy)
    scalestack replica-delay 3  make the replica apply WAL 3 s late (0 undoes it)
    scalestack seed           load the demo data (no-op when data exists, unless --force)
    scalestack urls           where to point a browser
    scalestack data-cache off the platform without its memcached data cache (or: on)
    scalestack bench          the social-network workload; figures in results/ (--smoke: 5 s,
                              --rate 40: open loop at 40 actions/s)
    scalestack bench cache    a study: latency, cache, balance, fanout, scaling, baseline, all
                              (tables on the terminal; JSON and a PNG in results/)

``--profile test`` (or ``SCALESTACK_PROFILE=test``) selects the test stack's
ports and data directory.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scalestack import stack
from scalestack.topology import PROFILE_PORT_OFFSET, Topology, load

console = Console(highlight=False)

ROLE_COLOURS = {
    "web": "blue",
    "platform": "blue",
    "haproxy": "red",
    "postgres": "red",
    "memcached": "red",
    "static-origin": "red",
    "cdn-edge": "red",
    "rabbitmq": "red",
    "consumer": "blue",
    "worker": "blue",
    "beat": "blue",
}


def _say(message: str) -> None:
    console.print(f"[bold]scalestack[/bold] {message}")


def print_status(t: Topology) -> None:
    """Print the process table: name, role, state, pid, address."""
    table = Table(title=f"scalestack ({t.profile}) — {t.var}")
    for column in ("process", "role", "state", "pid", "listens on", "uptime"):
        table.add_column(column)
    for row in stack.status(t):
        colour = "green" if row.state == "RUNNING" else "yellow" if row.state in ("STARTING", "STOPPING") else "red"
        table.add_row(
            f"[{ROLE_COLOURS.get(row.role, 'white')}]{row.name}[/]", row.role,
            f"[{colour}]{row.state}[/]", str(row.pid or "-"), row.address, row.uptime,
        )
    console.print(table)
    if stack.supervisord_running(t):
        print_offline_status(t)


def print_offline_status(t: Topology) -> None:
    """The active scheduler, queue depths and dead letters, and the outbox."""
    off = stack.offline_status(t)
    console.print(f"active beat: [bold]{off.active_beat or 'none'}[/]   "
                  f"outbox events waiting: {off.outbox_pending if off.outbox_pending is not None else '?'}")
    if off.queues:
        parts = []
        for name, depth in sorted(off.queues.items()):
            style = "red" if name.endswith(".dead") and depth else "white"
            parts.append(f"[{style}]{name}={depth}[/]")
        console.print("queues (messages): " + "  ".join(parts))


def print_urls(t: Topology) -> None:
    """Print where to look."""
    table = Table(title="open these")
    table.add_column("what")
    table.add_column("URL")
    table.add_row("the site (front door, HAProxy → web pool)", t.site_url)
    table.add_row("HAProxy stats (CSV: /stats;csv)", t.stats_url)
    table.add_row("platform API docs (through the platform pool)", f"{t.platform_url}/v1/docs")
    table.add_row("CDN edge → static origin (nginx; X-Cache-Status)", t.static_url)
    table.add_row("RabbitMQ management (user scalestack, see var/secrets.env)", f"{t.rabbitmq_management_url}/")
    console.print(table)
    console.print("demo users: any seeded name (e.g. see the front page), password [bold]password123[/]")


def follow_logs(t: Topology) -> None:
    """Print new lines of every process's log with its name, until interrupted."""
    positions: dict[Path, int] = {}
    for path in t.log.glob("*.log"):
        positions[path] = path.stat().st_size
    while True:
        for path in sorted(t.log.glob("*.log")):
            if path.name == "supervisord.log":
                continue
            start = positions.get(path, 0)
            size = path.stat().st_size
            if size < start:
                start = 0
            if size > start:
                with path.open("rb") as handle:
                    handle.seek(start)
                    data = handle.read(size - start)
                positions[path] = size
                name = path.stem
                role = name.split("-")[0]
                for line in data.decode(errors="replace").splitlines():
                    if "/healthz" in line:
                        continue  # HAProxy's checks, once a second per server: noise here
                    console.print(f"[{ROLE_COLOURS.get(role, 'white')}]{name:>12}[/] | ", end="")
                    console.out(line, highlight=False)
        time.sleep(0.25)


def cmd_run(t: Topology, args: argparse.Namespace) -> int:
    """Start the stack in the foreground; Ctrl-C stops everything cleanly."""
    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        stack.up(t, _say, seed=not args.no_seed)
        print_status(t)
        print_urls(t)
        _say("following the logs; press Ctrl-C to stop the stack")
        follow_logs(t)
    except KeyboardInterrupt:
        console.print()
        _say("stopping")
    except stack.StackError as error:
        console.print(f"[red]{error}[/]")
        stack.down(t, _say)
        return 1
    stack.down(t, _say)
    return 0


def cmd_up(t: Topology, args: argparse.Namespace) -> int:
    """Start the stack in the background."""
    try:
        stack.up(t, _say, seed=not args.no_seed)
    except stack.StackError as error:
        console.print(f"[red]{error}[/]")
        return 1
    print_status(t)
    print_urls(t)
    return 0


def cmd_down(t: Topology, args: argparse.Namespace) -> int:
    """Stop the stack."""
    stack.down(t, _say)
    return 0


def cmd_status(t: Topology, args: argparse.Namespace) -> int:
    """Show the process table; exit 1 if anything is not running."""
    print_status(t)
    return 0 if all(r.state == "RUNNING" for r in stack.status(t)) else 1


def cmd_stop(t: Topology, args: argparse.Namespace) -> int:
    """Stop one process."""
    t.get(args.name)
    stack.stop(t, args.name)
    _say(f"stopped {args.name}")
    return 0


def cmd_start(t: Topology, args: argparse.Namespace) -> int:
    """Start one process."""
    t.get(args.name)
    stack.start(t, args.name)
    _say(f"started {args.name}")
    return 0


def cmd_drain(t: Topology, args: argparse.Namespace) -> int:
    """Take a web or platform server out of HAProxy's pool gracefully."""
    stack.drain(t, args.name)
    _say(f"{args.name} drained: no new requests, none in flight")
    return 0


def cmd_ready(t: Topology, args: argparse.Namespace) -> int:
    """Put a drained server back into its pool."""
    stack.ready(t, args.name)
    _say(f"{args.name} is back in its pool")
    return 0


def cmd_scale(t: Topology, args: argparse.Namespace) -> int:
    """Resize the web and platform tiers without dropping a request (e.g. web=3 platform=2)."""
    sizes: dict[str, int] = {}
    for item in args.sizes:
        tier, _, count = item.partition("=")
        if tier not in ("web", "platform") or not count.isdigit():
            console.print(f"[red]expected web=N or platform=N, not {item!r}[/]")
            return 2
        sizes[tier] = int(count)
    new = stack.scale(t, sizes.get("web"), sizes.get("platform"), _say)
    print_status(new)
    return 0


def cmd_balance(t: Topology, args: argparse.Namespace) -> int:
    """Switch the web tier's platform calls between HAProxy's pool and the smart client."""
    stack.set_balancing(t, args.mode, _say)
    _say(f"the web tier now reaches the platform through {'the smart client' if args.mode == 'smart' else 'HAProxy :9000'}")
    return 0


def cmd_replica_delay(t: Topology, args: argparse.Namespace) -> int:
    """Make the replica lag on purpose (recovery_min_apply_delay), to watch the read fence work."""
    stack.set_replica_delay(t, args.seconds)
    _say(f"the replica now applies WAL {args.seconds:g} s late" if args.seconds else "the replica applies WAL at once")
    return 0


def cmd_seed(t: Topology, args: argparse.Namespace) -> int:
    """Load the demo data through the platform's seed command."""
    extra = [] if args.force else ["--if-empty"]
    stack.manage(t, "platform", "seed", *extra)
    return 0


def cmd_urls(t: Topology, args: argparse.Namespace) -> int:
    """Print the URLs."""
    print_urls(t)
    return 0


def cmd_bench(t: Topology, args: argparse.Namespace) -> int:
    """Run the social-network workload (or one study: latency, cache, balance, fanout, scaling, baseline)."""
    from scalestack import bench

    if args.study:
        return _bench_study(t, args)
    seconds, users, cap = (5, 4, 2_000) if args.smoke else (args.seconds, args.users, args.max_requests)
    load = f"{args.rate} actions/s (open loop)" if args.rate else f"{users} users"
    console.print(f"{load} for {seconds} s (at most {cap} requests) against {t.site_url} ...")
    result = bench.run(t, seconds=seconds, users=users, max_requests=cap, rate=args.rate, mix=args.mix)
    table = Table(title=f"scalestack bench ({t.profile} stack, {result.loop} loop, {result.mix} mix)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    hit_ratio = "-" if result.cache_hit_ratio is None else f"{result.cache_hit_ratio:.1%}"
    rows = [("requests", f"{result.requests:,}"), ("failed", f"{result.failures:,}"),
            ("throughput", f"{result.throughput_rps:,.1f} req/s"),
            ("p50 / p95 / p99", f"{result.p50_ms:.0f} / {result.p95_ms:.0f} / {result.p99_ms:.0f} ms"),
            ("data cache hit ratio (memcached)", hit_ratio)]
    if result.loop == "open":
        lag = "-" if result.generator_lag_p99_ms is None else f"{result.generator_lag_p99_ms:.1f} ms"
        rows += [("generator lag p99 (its own queueing)", lag),
                 ("arrivals dropped (too many in flight)", f"{result.dropped:,}")]
    for name, value in rows:
        table.add_row(name, value)
    for role, share in sorted(result.cpu_share.items(), key=lambda item: -item[1]):
        table.add_row(f"CPU: {role}", f"{share:.0%} ({result.cpu_seconds[role]:.1f} s)")
    console.print(table)
    print(f"figures in {bench.save(result)}")  # one line, never wrapped: scripts read it
    return 0


def _bench_study(t: Topology, args: argparse.Namespace) -> int:
    """One study: progress lines, a table of its ratios, JSON and a PNG under results/."""
    import json
    from datetime import datetime, timezone

    from scalestack import bench, benchplots, benchstudies

    names = list(benchstudies.STUDIES) if args.study == "all" else [args.study]
    bench.RESULTS.mkdir(exist_ok=True)
    for name in names:
        console.print(f"[bold]study: {name}[/bold] on the {t.profile} stack")
        options = benchstudies.QUICK[name] if args.quick else {}
        figures = benchstudies.run_study(t, name, say=console.print, **options)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = bench.RESULTS / f"{name}-{stamp}.json"
        path.write_text(json.dumps(figures, indent=2))
        plot = benchplots.PLOTS[name](figures, bench.RESULTS / f"{name}-{stamp}.png")
        for title, rows in benchstudies.tables(figures):
            table = Table(title=title)
            for i, column in enumerate(rows[0]):
                table.add_column(column, justify="left" if i == 0 else "right")
            for row in rows[1:]:
                table.add_row(*row)
            console.print(table)
        print(f"figures in {path}")  # one line each, never wrapped: scripts read them
        print(f"plot in {plot}")
    return 0


def cmd_data_cache(t: Topology, args: argparse.Namespace) -> int:
    """Turn the platform's data cache on or off (a rolling restart of the platform servers)."""
    stack.set_data_cache(t, args.state == "on", say=_say)
    _say(f"the platform's data cache is now {args.state}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="scalestack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILE_PORT_OFFSET), default=None,
                        help="which stack (default: $SCALESTACK_PROFILE or dev)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("run", cmd_run), ("up", cmd_up)):
        p = sub.add_parser(name, help=func.__doc__)
        p.add_argument("--no-seed", action="store_true", help="skip the demo data")
        p.set_defaults(func=func)
    for name, func in (("down", cmd_down), ("status", cmd_status), ("urls", cmd_urls)):
        sub.add_parser(name, help=func.__doc__).set_defaults(func=func)
    p = sub.add_parser("scale", help=cmd_scale.__doc__)
    p.add_argument("sizes", nargs="+", help="web=N and/or platform=N")
    p.set_defaults(func=cmd_scale)
    for name, func in (("stop", cmd_stop), ("start", cmd_start), ("drain", cmd_drain), ("ready", cmd_ready)):
        p = sub.add_parser(name, help=func.__doc__)
        p.add_argument("name", help="a process name, as `scalestack status` shows it")
        p.set_defaults(func=func)
    p = sub.add_parser("balance", help=cmd_balance.__doc__)
    p.add_argument("mode", choices=["haproxy", "smart"])
    p.set_defaults(func=cmd_balance)
    p = sub.add_parser("replica-delay", help=cmd_replica_delay.__doc__)
    p.add_argument("seconds", type=float, help="seconds of delay; 0 removes it")
    p.set_defaults(func=cmd_replica_delay)
    p = sub.add_parser("bench", help=cmd_bench.__doc__)
    p.add_argument("--seconds", type=int, default=30, help="how long the load runs")
    p.add_argument("--users", type=int, default=16, help="concurrent Locust users (closed loop)")
    p.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    p.add_argument("--smoke", action="store_true", help="5 s, 4 users: does it run and report sane numbers")
    p.add_argument("--quick", action="store_true", help="a study in seconds: does it run (for the tests)")
    p.add_argument("--rate", type=float, default=None, help="open loop: this many actions a second")
    p.add_argument("--mix", choices=["social", "reads"], default="social", help="the workload (see bench/locustfile.py)")
    p.add_argument("study", nargs="?", choices=["latency", "cache", "balance", "fanout", "scaling", "baseline", "all"],
                   help="a study instead of one run (see docs/benchmarks.md)")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("data-cache", help=cmd_data_cache.__doc__)
    p.add_argument("state", choices=["on", "off"])
    p.set_defaults(func=cmd_data_cache)
    p = sub.add_parser("seed", help=cmd_seed.__doc__)
    p.add_argument("--force", action="store_true", help="seed even if data exists")
    p.set_defaults(func=cmd_seed)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scalestack`` command."""
    args = build_parser().parse_args(argv)
    t = load(args.profile)
    try:
        return args.func(t, args)
    except KeyError as error:
        console.print(f"[red]{error.args[0]}[/]")
        return 2
    except stack.StackError as error:
        console.print(f"[red]{error}[/]")
        return 1


if __name__ == "__main__":
    sys.exit(main())
