#!/usr/bin/env bash
# Builds the FROM-scratch image and, where the container engine can run
# containers on this machine, runs it and asks it for the time.
# Says plainly which of those it could do; fails on anything that is nowd's fault.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=""
for candidate in podman docker; do
  if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
    engine=$candidate
    break
  fi
done
if [ -z "$engine" ]; then
  ./tools/ensure-apt podman >/dev/null 2>&1 || true
  if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
    engine=podman
  else
    echo "container test: NOT RUN: no working container engine (podman or docker) on this machine"
    exit 0
  fi
fi

image=localhost/nowd:test
"$engine" build -q -t "$image" . >/dev/null
user=$("$engine" image inspect "$image" --format '{{.Config.User}}')
entrypoint=$("$engine" image inspect "$image" --format '{{json .Config.Entrypoint}}')
size=$("$engine" image inspect "$image" --format '{{.Size}}')
echo "container test: built $image with $engine: user $user, entrypoint $entrypoint, $size bytes"
[ "$user" = "65534:65534" ] || { echo "container test: FAIL: runs as '$user', not 65534" >&2; exit 1; }
[ "$size" -lt $((1024 * 1024)) ] || { echo "container test: FAIL: image is $size bytes" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if ! out=$("$engine" run -d --rm --ulimit nofile=4096:4096 -p "127.0.0.1:$port:8080" "$image" 2>&1); then
  echo "container test: built, NOT RUN: $engine cannot start containers here: ${out##*Error: }"
  exit 0
fi
id=${out##*$'\n'}
trap '"$engine" stop -t 1 "$id" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 50); do
  body=$(curl -fsS -m 1 "http://127.0.0.1:$port/now" 2>/dev/null) && break
  sleep 0.1
done
[[ "${body:-}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z$ ]] \
  || { echo "container test: FAIL: /now answered '${body:-nothing}'" >&2; exit 1; }
echo "container test: ran $image, /now answered $body"
