"""docs/BENCHMARKS.md from a run's figures: the tables, the targets, and the
prose that says how they were measured. bench.py measures; this only writes."""

import statistics


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}x"


def fmt_int(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_ms(us):
    return "—" if us is None else f"{us / 1000:.3f}"


def summarize(runs, server, scenario):
    mine = [r for r in runs if r["server"] == server and r["scenario"] == scenario]
    return {
        "rps": statistics.median(r["rps"] for r in mine),
        "p50": statistics.median(r["p50_us"] for r in mine),
        "p99": statistics.median(r["p99_us"] for r in mine),
        "errors": sum(r["errors"] for r in mine),
        "cpu_us": statistics.median(r["cpu_us"] for r in mine),
    }


def results_table(res, scenarios, cfg):
    """Rows of (figure, better, nowd, nginx, python, nowd/nginx, nowd/python)."""
    names = ("nowd", "nginx", "python")
    rows = []

    def row(figure, better, values, fmt, ratios=True):
        v = [values.get(n) for n in names]
        rows.append(
            (
                figure,
                better,
                *(fmt(x) for x in v),
                ratio(v[0], v[1]) if ratios else "—",
                ratio(v[0], v[2]) if ratios else "—",
            )
        )

    for sc in scenarios:
        s = {n: summarize(res["runs"], n, sc.name) for n in names}
        row(f"{sc.name}: requests/s", "higher", {n: s[n]["rps"] for n in names}, fmt_int)
        row(f"{sc.name}: p50 latency, ms", "lower", {n: s[n]["p50"] for n in names}, fmt_ms)
        row(f"{sc.name}: p99 latency, ms", "lower", {n: s[n]["p99"] for n in names}, fmt_ms)
        row(
            f"{sc.name}: errors", "lower", {n: s[n]["errors"] for n in names}, fmt_int, ratios=False
        )
        row(
            f"{sc.name}: server CPU per request, µs",
            "lower",
            {n: s[n]["cpu_us"] for n in names},
            lambda v: "—" if v is None else f"{v:.1f}",
        )
    row("peak RSS under load, KiB", "lower", res["peak_rss"], fmt_int)
    row("idle RSS after start, KiB", "lower", res["idle_rss"], fmt_int)
    row(
        f"RSS with {res['idle_connections']:,} idle connections, KiB",
        "lower",
        res["conn_rss"],
        fmt_int,
    )
    row(
        f"burst of {res['burst_connections']} new connections: "
        f"unanswered after {cfg['burst_wait_s']:g} s",
        "lower",
        res["burst_stalled"],
        fmt_int,
        ratios=False,
    )
    row(
        "answers `Connection: close` when closing",
        "yes",
        res["says_close"],
        lambda v: "yes" if v else "no",
        ratios=False,
    )
    row(
        "start to first answer, ms",
        "lower",
        res["start_ms"],
        lambda v: "—" if v is None else f"{v:.2f}",
    )
    row("binary size, KiB", "lower", res["binary_kib"], fmt_int)
    return rows


def targets(res, scenarios):
    """The issue's targets for nowd: (target, figure, met)."""
    out = []
    keepalive = [sc for sc in scenarios if sc.keepalive]
    for sc in keepalive:
        nowd = summarize(res["runs"], "nowd", sc.name)
        nginx = summarize(res["runs"], "nginx", sc.name)
        r = nowd["rps"] / nginx["rps"]
        out.append(
            (
                f"{sc.name}: requests/s at least 0.5x nginx (stretch 1.0x)",
                f"{r:.2f}x",
                "met (stretch met)" if r >= 1.0 else "met" if r >= 0.5 else "not met",
            )
        )
        out.append(
            (
                f"{sc.name}: no errors",
                f"{nowd['errors']}",
                "met" if nowd["errors"] == 0 else "not met",
            )
        )
    p99 = summarize(res["runs"], "nowd", keepalive[0].name)["p99"]
    out.append(
        (
            f"{keepalive[0].name}: p99 under 2 ms",
            f"{p99 / 1000:.3f} ms",
            "met" if p99 < 2000 else "not met",
        )
    )
    idle = res["idle_rss"]["nowd"]
    out.append(("idle RSS under 1 MiB", f"{idle:,} KiB", "met" if idle < 1024 else "not met"))
    conn = res["conn_rss"]["nowd"]
    out.append(
        (
            f"RSS with {res['idle_connections']:,} idle connections under 16 MiB",
            f"{conn:,} KiB",
            "met" if conn < 16 * 1024 else "not met",
        )
    )
    start = res["start_ms"]["nowd"]
    out.append(
        ("start to first answer under 10 ms", f"{start:.2f} ms", "met" if start < 10 else "not met")
    )
    return out


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(res, scenarios, cfg):
    m = res["machine"]
    pin = (
        f"Each server runs on CPU {cfg['server_cpu']} and wrk ({cfg['wrk_threads']} thread) "
        f"and the driver on CPU {cfg['client_cpu']} (taskset / sched_setaffinity), so a server "
        "has one core to itself and never competes with its load generator."
        if res["pinned"]
        else "This machine has one core: servers and wrk share it (no pinning)."
    )
    out = [
        "# Benchmarks"
        + (" (smoke run: tiny budget, not figures to quote)" if cfg["smoke"] else ""),
        "",
        "nowd against nginx, the server a user would put in its place, and Python's",
        "`http.server`, the naive baseline. Everything on loopback (127.0.0.1).",
        "",
        f"Made by `{cfg['command']}` on {res['date']}. This file is written by",
        "`bench/bench.py`: run it again rather than editing the figures.",
        "",
        "## Machine",
        "",
        md_table(("", ""), list(m.items())),
        "",
        "## Results",
        "",
        f"Median of {cfg['rounds']} rounds of {cfg['seconds']} s each; errors are summed over the "
        "rounds. The ratio columns are nowd's figure divided by the other's; the `better` "
        "column says which way is good.",
        "",
        md_table(
            ("figure", "better", "nowd", "nginx", "python", "nowd/nginx", "nowd/python"),
            results_table(res, scenarios, cfg),
        ),
        "",
        "## Targets",
        "",
        md_table(("target (nowd)", "figure", "result"), targets(res, scenarios)),
        "",
        *capacity_note(res, scenarios),
        "## Method",
        "",
        f"- {pin}",
        "- Load: wrk with a Lua `done()` script (`bench/report.lua`) that reports requests, "
        "latency percentiles and errors (socket errors plus non-2xx/3xx answers). Scenarios: "
        + ", ".join(f"`{sc.name}`" for sc in scenarios)
        + "; `close` sends `Connection: close`, so every request opens a new connection. "
        "Rounds are interleaved: each round runs every scenario against every server, in an "
        "order rotated each round, so drift hits all three alike. All three servers stay up "
        "through the load runs; the idle ones use no CPU.",
        "- Server CPU per request: the answering process's user plus system CPU time "
        "(/proc/PID/stat, all threads) over a wrk run, divided by the requests it answered. "
        "Unlike requests/s it does not depend on whether wrk kept the server's core busy "
        "(`server core busy` in the table of every run).",
        "- Peak RSS under load: VmHWM of the answering process after all load runs "
        "(nginx: its one worker).",
        f"- Start to first answer: from spawning the process to the first `200` on `GET /now`, "
        f"the driver connecting in a tight loop; idle RSS: VmRSS {cfg['idle_settle_s']} s after "
        f"that answer. Median of {cfg['start_repeats']} fresh processes.",
        f"- Idle connections: a fresh process; the driver opens {res['idle_connections']:,} "
        "connections one at a time, each sends one `GET /now` and reads its answer, then all "
        "stay open and silent while VmRSS is read (nowd closes a connection idle for 5 s, so "
        "this happens at once).",
        f"- Burst: a fresh process; the driver opens {res['burst_connections']} connections back "
        f"to back, each sending `GET /now` at once, and counts those with no answer after "
        f"{cfg['burst_wait_s']:g} s.",
        '- nginx 1 worker, access log off, `return 200 "$time_iso8601\\n"` '
        "(`bench/nginx.conf.in`), `keepalive_requests` lifted so keep-alive stays keep-alive. "
        "Its answer has whole seconds; nowd's has microseconds.",
        "- python: `ThreadingHTTPServer` with an HTTP/1.1 `BaseHTTPRequestHandler` "
        "(`bench/pyserver.py`): one thread per connection, as tiny_http in nowd.",
        "- RSS counts shared library pages too: nowd is static, nginx and python are "
        f"dynamically linked. nginx's RSS is the worker's; its master adds "
        f"{res['nginx_master_rss']:,} KiB. Binary size: nowd's file, nginx's `/usr/sbin/nginx` "
        "(without its shared libraries).",
        *close_note(res),
        f"- Load average (1, 5, 15 min) before the run: {fmt_load(res['load_before'])}; after: "
        f"{fmt_load(res['load_after'])}. Other processes used {others_summary(res['runs'])} "
        "during the load runs (`others' CPU` in the table of every run: CPU time of the whole "
        "machine less the server, wrk and the driver, in % of one core). What they took, the "
        f"figures lack. Before each run the driver waited for the rest of the machine to use "
        f"under {100 * cfg['quiet_cores']:.0f}% of a core, {res['quiet_waited']:.0f} s in all "
        f"(at most {cfg['quiet_budget_s']:.0f} s).",
        "",
        "## Every run",
        "",
        md_table(
            (
                "round",
                "scenario",
                "server",
                "requests/s",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "CPU µs/request",
                "kernel share",
                "server core busy",
                "others' CPU",
                "errors",
            ),
            [
                (
                    r["round"],
                    r["scenario"],
                    r["server"],
                    fmt_int(r["rps"]),
                    fmt_ms(r["p50_us"]),
                    fmt_ms(r["p99_us"]),
                    fmt_ms(r["p999_us"]),
                    f"{r['cpu_us']:.1f}",
                    f"{100 * r['sys_share']:.0f}%",
                    f"{100 * r['cpu_busy']:.0f}%",
                    f"{100 * r['others_cores']:.0f}%",
                    f"{r['errors']}" + (f" ({error_detail(r)})" if r["errors"] else ""),
                )
                for r in res["runs"]
            ],
        ),
        "",
    ]
    return "\n".join(out)


def capacity_note(res, scenarios):
    """requests/s depends on wrk and on what else runs on the machine; server
    CPU per request does not. Gives nowd's capacity on one core as a share of
    nginx's, and says when wrk, not nginx, set nginx's pace."""
    keepalive = [sc.name for sc in scenarios if sc.keepalive]
    ratios = []
    for name in keepalive:
        nowd = summarize(res["runs"], "nowd", name)["cpu_us"]
        nginx = summarize(res["runs"], "nginx", name)["cpu_us"]
        ratios.append(f"{name}: {nginx / nowd:.2f}x")
    note = (
        "Measured by server CPU per request, which depends far less than requests/s on wrk "
        "and on the rest of the machine, nowd's keep-alive capacity on one core is this "
        "fraction of nginx's: "
        f"{', '.join(ratios)}."
    )
    busy = [
        r["cpu_busy"] for r in res["runs"] if r["server"] == "nginx" and r["scenario"] in keepalive
    ]
    if busy and statistics.median(busy) < 0.9:
        note += (
            f" nginx's worker was {100 * statistics.median(busy):.0f}% busy in the median "
            "keep-alive run: wrk, on its one core, set the pace there, so the requests/s "
            "ratio flatters nowd."
        )
    return [note, ""]


def others_summary(runs):
    shares = [r["others_cores"] for r in runs]
    return (
        f"{100 * statistics.mean(shares):.0f}% of a core on average "
        f"(at most {100 * max(shares):.0f}% in one run)"
    )


def fmt_load(load):
    return " ".join(f"{x:.2f}" for x in load)


def close_note(res):
    silent = [name for name, says in res["says_close"].items() if not says]
    if not silent:
        return []
    verb = "closes" if len(silent) == 1 else "close"
    return [
        f"- {' and '.join(silent)} {verb} the connection after a `Connection: close` request "
        "without answering `Connection: close`. wrk then sends its next request on the "
        "closed connection, counts a read error and reconnects: in the `close` scenario "
        "such a server shows about one read error per request, though every answer was "
        "delivered."
    ]


def error_detail(r):
    return ", ".join(
        f"{k} {r[k]}" for k in ("connect", "read", "write", "status", "timeout") if r[k]
    )
