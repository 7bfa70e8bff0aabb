#!/usr/bin/env python3
"""Top functions of a callgrind profile, per request.

    python3 callgrind_top.py CALLGRIND_OUT REQUESTS [N [FUNCTION...]]

callgrind_annotate lists a function once per source file its instructions
come from, and with Rust's inlining one function spans many files (its own,
core::fmt, tiny_http...). This merges them by function name and prints the
top N by inclusive and by self cost, in instructions per request; then,
for each FUNCTION named, what its calls cost, callee by callee.
"""

import re
import sys
from collections import defaultdict


def parse(path):
    names = {}  # "(id)" -> name, shared by fn= and cfn=
    self_cost = defaultdict(int)
    call_cost = defaultdict(int)  # cost of the calls a function makes
    callees = defaultdict(lambda: defaultdict(int))  # fn -> cfn -> cost
    fn = cfn = None
    after_calls = False
    total = 0

    def name(spec):
        m = re.match(r"\((\d+)\)(?: (.*))?", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith(("cfn=", "cfni=")):
                cfn = name(line.split("=", 1)[1])
            elif line.startswith("calls="):
                after_calls = True
            elif line.startswith("summary:"):
                total = int(line.split()[1])
            elif line[:1].isdigit() or line[:1] in "+-*":
                fields = line.split()
                cost = int(fields[1]) if len(fields) > 1 else 0
                if after_calls:
                    if cfn != fn:  # a recursive call is already in fn's own cost
                        call_cost[fn] += cost
                        callees[fn][cfn] += cost
                    after_calls = False
                else:
                    self_cost[fn] += cost
    inclusive = {f: self_cost[f] + call_cost[f] for f in set(self_cost) | set(call_cost)}
    return total, inclusive, self_cost, callees


def short(fn):
    fn = re.sub(r"::h[0-9a-f]{16}$", "", fn)
    return fn if len(fn) <= 110 else fn[:107] + "..."


def main():
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    total, inclusive, self_cost, callees = parse(path)
    print(
        f"total {total:,} instructions, {requests:,} requests: {total / requests:,.0f} per request"
    )
    for title, costs in (("inclusive", inclusive), ("self", self_cost)):
        print(f"\n{title}: instructions per request, share of the total")
        for fn, cost in sorted(costs.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{cost / requests:>10,.0f}  {100 * cost / total:5.1f}%  {short(fn)}")
    for caller in sys.argv[4:]:
        print(
            f"\n{caller}: {inclusive.get(caller, 0) / requests:,.0f} per request, "
            f"{self_cost.get(caller, 0) / requests:,.0f} of them its own; its calls:"
        )
        for fn, cost in sorted(callees[caller].items(), key=lambda kv: -kv[1]):
            if cost / requests >= 50:
                print(f"{cost / requests:>10,.0f}  {short(fn)}")


if __name__ == "__main__":
    main()
