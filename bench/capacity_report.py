"""The measured part of docs/CAPACITY.md, written from capacity.json.

    python3 capacity_report.py [--doc ../docs/CAPACITY.md]

capacity.py measures and writes capacity.json; this only renders it, so the
prose never holds a figure the data file does not. Without --doc it prints the
Markdown; with it, it replaces the part between the two markers below.
"""

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "capacity.json"
BEGIN = "<!-- measured: written by `make capacity` from bench/capacity.json -->"
END = "<!-- end of measured -->"


def render(d: dict) -> str:
    s = d["stalled"]
    per, before, held = s["kib_per_connection"], s["before_kib"], s["held_kib"]
    n, cap = s["connections"], d["max_connections"]
    fresh, over, flood = d["fresh_at_cap_less_one"], d["over_the_cap"], d["pipelining"]
    fl = flood["kib_per_connection"]
    image = d["image"]["kib_per_connection"]
    worst = d["worst_kib_per_connection"]
    memory_max_mib = d["memory_max_kib"] / 1024
    needed_mib = cap * worst / 1024
    hierarchy = "cgroup v2" if d["cgroup"] == "v2" else "cgroup v1"
    rows = [
        ("cgroup memory in all", "total", True),
        ("user (anonymous: heap, touched thread stacks)", "user", False),
        ("kernel (thread stacks, sockets, slab)", "kernel", False),
        ("of which socket buffers", "sock", False),
    ]
    table = [
        f"| | with 0 connections | with {n} | per connection |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key, bold in rows:
        cost = f"**{per[key]:.1f} KiB**" if bold else f"{per[key]:.1f} KiB"
        table.append(f"| {label} | {before[key]:,.0f} KiB | {held[key]:,.0f} KiB | {cost} |")
    tasks_each = (s["tasks_held"] - s["tasks_before"]) / n
    table.append(
        f"| tasks (pids cgroup) | {s['tasks_before']} | {s['tasks_held']} | {tasks_each:.2f} |"
    )
    lines = [
        f"`{d['command']}`, {d['measured_at']}, Linux {d['kernel']}, {hierarchy}; the unit's",
        f"bounds: `MemoryMax={d['unit_bounds']['MemoryMax']}`,"
        f" `TasksMax={d['unit_bounds']['TasksMax']}`,"
        f" `LimitNOFILE={d['unit_bounds']['LimitNOFILE']}`; nowd's cap under them: {cap}.",
        "",
        f"{n} connections held, each stalled inside a request head"
        f" (opened in {s['opened_s']:.1f} s):",
        "",
        *table,
        "",
        f"nowd's RSS with {n} held: {s['rss_kib']:,} KiB; the cgroup's peak over the whole run:"
        f" {d['peak_kib']:,.0f} KiB of {d['memory_max_kib']:,.0f} KiB allowed.",
        "",
        f"- A fresh `GET /now` with {n} held: {fresh['answered_200']} of {fresh['clients']}"
        f" answered `200`; median {fresh['median_ms']:.2f} ms,"
        f" slowest {fresh['slowest_ms']:.2f} ms.",
        f"- With all {cap} places taken, {over['clients']} more clients:"
        f" {over['got_503']} got `503`, {over['closed_or_reset']} a close or reset,"
        f" {over['other']} anything else; the slowest refusal took {over['slowest_ms']:.2f} ms.",
        f"- {flood['connections']} connections that pipeline `GET /now` for 3 s and never read:"
        f" **{fl['total']:.1f} KiB** each in all, of which {fl['sock']:.1f} KiB socket buffers,"
        f" {fl['kernel']:.1f} KiB kernel, {fl['user']:.1f} KiB user.",
        f"- nowd {'still ran' if d['still_running'] else 'had EXITED'} at the end"
        f" ({d['elapsed_s']:.1f} s in all).",
        "",
        f"In the booted image ({d['image']['source']}), an idle connection cost"
        f" **{image:.1f} KiB**.",
        "",
        "Per connection at worst, then: the dearer of the two idle figures,"
        f" {max(image, per['total']):.1f} KiB, and the socket buffers of a client that"
        f" pipelines, {fl['sock']:.1f} KiB, each"
        f" rounded up: **{worst} KiB** (`worst_kib_per_connection`). At the cap:"
        f" {cap} x {worst} KiB = {needed_mib:.0f} MiB of the {memory_max_mib:.0f} MiB"
        f" `MemoryMax` allows.",
    ]
    return "\n".join(lines)


def update_doc(doc: Path, data: dict) -> None:
    text = doc.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"capacity_report: {doc} has no measured part ({BEGIN})")
    block = f"{BEGIN}\n{render(data)}\n{END}"
    doc.write_text(pattern.sub(lambda _: block, text))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--doc", type=Path, help="rewrite the measured part of this file")
    args = ap.parse_args()
    data = json.loads(args.data.read_text())
    if args.doc:
        update_doc(args.doc, data)
    else:
        print(render(data))


if __name__ == "__main__":
    main()
