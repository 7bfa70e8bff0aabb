#!/usr/bin/env bash
# Checks that the Dockerfile's build stage compiles with make build's cargo
# command, builds the FROM-scratch image, runs it as built (its user,
# entrypoint and port) and asks it for the time and for /.
# No registry is reachable here, so the build stage (FROM rust) cannot be
# built: the image is built from the Dockerfile's `prebuilt` target, the same
# runtime stage with the binary of this checkout's make build. With the container engine where it can
# start containers; where it cannot (this development machine: crun fails at
# setrlimit(RLIMIT_NPROC) with EPERM whatever the value), with the image's
# own root file system and config in fresh namespaces instead. Says plainly
# which way it ran; fails on anything that is nowd's fault.
set -euo pipefail
cd "$(dirname "$0")/.."

# The build stage's cargo command is the one make build runs.
make_cargo=$(make -s -n build | grep '^cargo build ')
dockerfile_cargo=$(sed -n 's/^RUN \(cargo build .*\)$/\1/p' Dockerfile)
if [ -z "$make_cargo" ] || [ "$make_cargo" != "$dockerfile_cargo" ]; then
  echo "container test: FAIL: the Dockerfile builds with '$dockerfile_cargo'," \
    "make build with '$make_cargo'" >&2
  exit 1
fi
echo "container test: the Dockerfile's build stage runs make build's command: $make_cargo"
# Both the default image and the prebuilt one are the runtime stage, FROM scratch.
stages=$(grep -E '^FROM ' Dockerfile | sed 's/  */ /g')
for stage in "FROM scratch AS runtime" "FROM runtime AS prebuilt" "FROM runtime AS nowd"; do
  grep -qx "$stage" <<<"$stages" || { echo "container test: FAIL: no '$stage' in the Dockerfile" >&2; exit 1; }
done
[ "$(tail -1 <<<"$stages")" = "FROM runtime AS nowd" ] \
  || { echo "container test: FAIL: the last stage is not the nowd image" >&2; exit 1; }

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
"$engine" build -q --target prebuilt -t "$image" . >/dev/null
echo "container test: built the Dockerfile's prebuilt target (this checkout's make build" \
  "binary; no registry here for the rust build stage)"
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

# / answers with nowd's page for people: 200, HTML, its security policy.
check_root() {  # $1...: the command that fetches / (curl -sS -i)
  local head
  head=$("$@" 2>/dev/null | tr -d '\r' | head -c 4096) || true
  local status=${head#HTTP/1.1 }
  status=${status%% *}
  [ "$status" = 200 ] || { echo "container test: FAIL: / answered '${head%%$'\n'*}'" >&2; exit 1; }
  grep -qi '^content-type: text/html' <<<"$head" \
    || { echo "container test: FAIL: / answered 200 but not HTML" >&2; exit 1; }
  grep -qi "^content-security-policy: default-src 'none'" <<<"$head" \
    || { echo "container test: FAIL: / came without its Content-Security-Policy" >&2; exit 1; }
  echo "container test: / answered ${head%%$'\n'*}"
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if out=$("$engine" run -d --rm --ulimit nofile=4096:4096 -p "127.0.0.1:$port:8080" "$image" 2>&1); then
  id=${out##*$'\n'}
  trap '"$engine" stop -t 1 "$id" >/dev/null 2>&1 || true' EXIT
  check_now "with $engine run" curl -fsS -m 1 "http://127.0.0.1:$port/now"
  check_root curl -sS -i -m 1 "http://127.0.0.1:$port/"
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
check_root ip netns exec "$ns" curl -sS -i -m 1 "http://127.0.0.1:8080/"
pid=$(pgrep -P "$runner" | head -1)
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$uid" = "${user%%:*}" ] || { echo "container test: FAIL: nowd ran as uid $uid, not ${user%%:*}" >&2; exit 1; }
caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
[ "$caps" = 0000000000000000 ] || { echo "container test: FAIL: nowd holds capabilities $caps" >&2; exit 1; }
echo "container test: nowd ran as uid $uid with no capabilities; its log: $(tr '\n' ' ' < "$work/log")"
