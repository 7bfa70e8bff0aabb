#!/usr/bin/env bash
# Builds the FROM-scratch image, runs it as built (its user, entrypoint and
# port) and asks it for the time. With the container engine where it can
# start containers; where it cannot (this development machine: crun fails at
# setrlimit(RLIMIT_NPROC) with EPERM whatever the value), with the image's
# own root file system and config in fresh namespaces instead. Says plainly
# which way it ran; fails on anything that is nowd's fault.
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

check_now() {  # $1: how it ran; $2...: the command that fetches /now
  local how=$1 body=""
  shift
  for _ in $(seq 50); do
    body=$("$@" 2>/dev/null) && break
    sleep 0.1
  done
  [[ "${body:-}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z$ ]] \
    || { echo "container test: FAIL: /now answered '${body:-nothing}' ($how)" >&2; exit 1; }
  echo "container test: RAN $image $how: /now answered $body"
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if out=$("$engine" run -d --rm --ulimit nofile=4096:4096 -p "127.0.0.1:$port:8080" "$image" 2>&1); then
  id=${out##*$'\n'}
  trap '"$engine" stop -t 1 "$id" >/dev/null 2>&1 || true' EXIT
  check_now "with $engine run" curl -fsS -m 1 "http://127.0.0.1:$port/now"
  exit 0
fi
echo "container test: $engine cannot start containers here: ${out##*Error: }"

# The image as built, without the engine: its exported root file system
# (only /nowd), its user and its entrypoint from the image's config, in new
# network, PID, mount, UTS and IPC namespaces, with no new privileges. The
# entrypoint's fixed port 8080 is the namespace's own.
if [ "$(id -u)" -ne 0 ]; then
  echo "container test: built, NOT RUN: running the image's root without $engine needs root"
  exit 0
fi
work=$(mktemp -d /tmp/nowd-container-XXXXXX)
ns="nowd-container-$$"
runner=""
cleanup() {
  # unshare ignores SIGTERM while it waits for its child: stop the child (nowd).
  if [ -n "$runner" ]; then
    for child in $(pgrep -P "$runner"); do kill "$child" 2>/dev/null || true; done
    wait "$runner" 2>/dev/null || true
  fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cid=$("$engine" create "$image")
"$engine" export "$cid" | tar -x -C "$work" --one-top-level=root
"$engine" rm -f "$cid" >/dev/null
mapfile -t entry < <(python3 -c 'import json, sys; print(*json.loads(sys.argv[1]), sep="\n")' "$entrypoint")
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" unshare --pid --fork --kill-child --mount --uts --ipc -- \
  setpriv --no-new-privs -- chroot --userspec="$user" "$work/root" "${entry[@]}" \
  > "$work/log" 2>&1 &
runner=$!
check_now "from its own root file system as user $user with entrypoint $entrypoint, in new namespaces (unshare + chroot)" \
  ip netns exec "$ns" curl -fsS -m 1 "http://127.0.0.1:8080/now"
pid=$(pgrep -P "$runner" | head -1)
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$uid" = "${user%%:*}" ] || { echo "container test: FAIL: nowd ran as uid $uid, not ${user%%:*}" >&2; exit 1; }
caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
[ "$caps" = 0000000000000000 ] || { echo "container test: FAIL: nowd holds capabilities $caps" >&2; exit 1; }
echo "container test: nowd ran as uid $uid with no capabilities; its log: $(tr '\n' ' ' < "$work/log")"
