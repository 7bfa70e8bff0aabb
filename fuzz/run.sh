#!/usr/bin/env bash
# Runs the fuzz target for a bounded time; fails on any crash, panic or hang.
#   fuzz/run.sh SECONDS [TARGET]
# New inputs go to a scratch directory, so the committed corpus changes only
# when someone merges into it (see fuzz/README.md).
set -euo pipefail

seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET]}"
target="${2:-request_head}"
cd "$(dirname "$0")/.."

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
log="$scratch/fuzz.log"

# -timeout: one input that takes this long is a hang, reported as a crash.
status=0
cargo +nightly fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -timeout=10 -dict="fuzz/$target.dict" \
  -print_final_stats=1 2>"$log" || status=$?

grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
echo "fuzz $target: ${seconds}s, corpus $(find "fuzz/corpus/$target" -type f | wc -l) committed + $(find "$scratch" -maxdepth 1 -type f | wc -l) new inputs, exit status $status"
if [ "$status" -ne 0 ]; then
  grep -vE '^#[0-9]+' "$log" | tail -n 60 >&2
  echo "fuzz $target: crash, panic or hang; the input is in fuzz/artifacts/$target/" >&2
fi
exit "$status"
