#!/usr/bin/env bash
# Profiles nowd's request path with callgrind (valgrind): instructions per
# request and where they go. See PROFILE.md for what it found.
#
#   bench/profile.sh [REQUESTS]        default 20000
#
# Builds a copy of nowd with symbols (not stripped, line tables) in
# $PROF_TARGET_DIR, starts it under callgrind on loopback, warms it up,
# zeroes the counters, sends REQUESTS keep-alive GET /now over one
# connection at a time (1,000 per connection, well inside nowd's 30 s
# connection age even at valgrind's pace), dumps the counters and prints
# callgrind_annotate's listings, then the same costs merged by function and
# divided by the requests (callgrind_top.py). callgrind sees user space only:
# a second step counts the system calls per request of the native binary
# (strace -f -c over STRACE_REQUESTS requests).
# Output: $OUT_DIR (default /tmp/nowd-profile): callgrind.out.*, annotate-*.txt,
# top.txt, strace.txt
set -euo pipefail

REQUESTS=${1:-20000}
PER_CONNECTION=1000
WARMUP=200
STRACE_REQUESTS=5000
PROF_TARGET_DIR=${PROF_TARGET_DIR:-/tmp/nowd-prof}
OUT_DIR=${OUT_DIR:-/tmp/nowd-profile}
TARGET=x86_64-unknown-linux-musl
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}

"$ROOT/tools/ensure-apt" valgrind strace

echo "== building nowd with symbols in $PROF_TARGET_DIR"
(cd "$ROOT" && CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=1 \
  cargo build --release --locked --target "$TARGET" --target-dir "$PROF_TARGET_DIR" -q)
BIN=$PROF_TARGET_DIR/$TARGET/release/nowd

mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/callgrind.out.*
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "== nowd under callgrind on 127.0.0.1:$PORT"
valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/callgrind.out.%p" \
  "$BIN" --listen "127.0.0.1:$PORT" --log-level warn --time-reference 127.0.0.1:9 2>"$OUT_DIR/valgrind.log" &
VG=$!
trap 'kill -TERM $VG 2>/dev/null || true; wait $VG 2>/dev/null || true' EXIT

# One client, stdlib only: N keep-alive requests, PER_CONNECTION per connection.
drive() {
  "$PYTHON" - "$PORT" "$1" "$PER_CONNECTION" <<'EOF'
import socket, sys, time
port, total, per = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = b"GET /now HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
deadline = time.monotonic() + 20
while True:  # valgrind takes a while to start the program
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("nowd did not start under valgrind")
        time.sleep(0.1)
done, t0 = 0, time.monotonic()
while done < total:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rb")
        for _ in range(min(per, total - done)):
            s.sendall(req)
            status = f.readline()
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            f.read(length)
            if b" 200 " not in status:
                sys.exit(f"unexpected answer: {status!r}")
            done += 1
print(f"{done} requests in {time.monotonic() - t0:.1f} s")
EOF
}

drive "$WARMUP" >/dev/null
callgrind_control --zero "$VG" >/dev/null
drive "$REQUESTS"
callgrind_control --dump=requests "$VG" >/dev/null
kill -TERM $VG; wait $VG || true
trap - EXIT

# The dump of the measured requests (part 1), else what was written at exit.
OUT="$OUT_DIR/callgrind.out.$VG.1"
[ -f "$OUT" ] || OUT="$OUT_DIR/callgrind.out.$VG"
TOTAL=$(callgrind_annotate "$OUT" | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}')
echo "== $OUT: $TOTAL instructions for $REQUESTS requests: $((TOTAL / REQUESTS)) per request"
callgrind_annotate --inclusive=yes --threshold=100 "$OUT" >"$OUT_DIR/annotate-inclusive.txt"
callgrind_annotate --threshold=100 "$OUT" >"$OUT_DIR/annotate-exclusive.txt"
# Top 40, then the two halves of a request: the main thread's answer
# (nowd::handle) and the connection thread's reading (ClientConnection::next).
"$PYTHON" "$ROOT/bench/callgrind_top.py" "$OUT" "$REQUESTS" 40 nowd::handle \
  '<tiny_http::client::ClientConnection as core::iter::traits::iterator::Iterator>::next' \
  | tee "$OUT_DIR/top.txt"

echo "== system calls of the native binary for $STRACE_REQUESTS requests (strace -f -c)"
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
strace -f -c -o "$OUT_DIR/strace.txt" "$BIN" --listen "127.0.0.1:$PORT" --log-level warn --time-reference 127.0.0.1:9 &
ST=$!
trap 'kill -TERM $ST 2>/dev/null || true; wait $ST 2>/dev/null || true' EXIT
drive "$STRACE_REQUESTS"
# strace's child is nowd; SIGTERM to it ends both, and strace writes its summary.
NOWD_PID=$(cat "/proc/$ST/task/$ST/children")
kill -TERM "$NOWD_PID"; wait $ST || true
trap - EXIT
awk -v n="$STRACE_REQUESTS" 'NR > 2 && $4 ~ /^[0-9]+$/ && $4 >= n / 100 {
  printf "%8.2f per request  %s\n", $4 / n, $NF }' "$OUT_DIR/strace.txt" | tee -a "$OUT_DIR/top.txt"
