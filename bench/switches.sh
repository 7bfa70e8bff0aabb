#!/usr/bin/env bash
# Context switches and CPU per keep-alive request of one nowd binary under
# wrk, the kernel-side figures that bench/profile.sh (one connection,
# callgrind and strace) cannot give. See PROFILE.md for what they showed.
#
#   bench/switches.sh BIN [CONNECTIONS] [SECONDS]     default 32 connections, 3 s
#
# As in bench.py, nowd runs on CPU 0 and wrk (one thread) on CPU 1. After a
# 1 s warm-up (which also starts the connection threads), it reads
# /proc/PID/task/*/status (voluntary and involuntary switches of every
# thread) and /proc/PID/stat (user + system CPU of the process) before and
# after one wrk run and divides by the requests answered. It also prints
# wrk's latency percentiles (bench/report.lua) and how busy CPU 0 was with
# other processes: a run where they took more than a few % is noise.
# Alternate two binaries, a few runs each, to compare them.
set -euo pipefail

BIN=${1:?usage: bench/switches.sh BIN [CONNECTIONS] [SECONDS]}
CONNS=${2:-32}
SECONDS_=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

taskset -c 0 "$BIN" --listen "127.0.0.1:$PORT" --log-level error --time-reference 127.0.0.1:9 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/now" && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/now"
taskset -c 1 wrk -t1 -c"$CONNS" -d1s "$URL" >/dev/null

switches() { cat /proc/$PID/task/*/status | awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v, n}'; }
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
cpu0() { awk '$1 == "cpu0" {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

read -r vol0 invol0 < <(switches); cpu_0=$(cpu); all0=$(cpu0)
RESULT=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECONDS_}s" -s "$HERE/report.lua" "$URL" | tail -1)
read -r vol1 invol1 < <(switches); cpu_1=$(cpu); all1=$(cpu0)

"$PYTHON" - "$RESULT" "$(getconf CLK_TCK)" "$SECONDS_" "$CONNS" \
  "$vol0" "$vol1" "$invol0" "$invol1" "$cpu_0" "$cpu_1" "$all0" "$all1" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
tck, secs, conns = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
vol0, vol1, invol0, invol1, cpu0, cpu1, all0, all1 = map(float, sys.argv[5:])
n = max(r["requests"], 1)
print(f"c{conns}: {r['requests']} requests in {r['duration_us'] / 1e6:.1f} s, "
      f"errors {r['connect'] + r['read'] + r['write'] + r['status'] + r['timeout']}")
print(f"  per request: {(vol1 - vol0) / n:.2f} voluntary + {(invol1 - invol0) / n:.2f} involuntary "
      f"context switches, {(cpu1 - cpu0) / tck / n * 1e6:.1f} us of CPU")
print(f"  latency us: p50 {r['p50_us']} p90 {r['p90_us']} p99 {r['p99_us']} "
      f"p99.9 {r['p999_us']} max {r['max_us']}")
print(f"  other processes on CPU 0: {((all1 - all0) - (cpu1 - cpu0)) / tck / secs * 100:.0f}% of it")
EOF
