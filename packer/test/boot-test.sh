#!/usr/bin/env bash
# Boot test of the nowd image, without AWS:
#  1. a Debian 13 (trixie) root file system from debootstrap plus the AMI's
#     packages (ami-root.sh, cached between runs) stands in for Debian's AMI;
#  2. a copy of it gets what an EC2 build instance has that the image must
#     not keep (authorized keys, cloud-init instance state), then the files
#     packer uploads, in the same staging directory, and the same provisioning
#     scripts, unchanged and in the template's order, as root in a chroot;
#  3. it boots with systemd as PID 1 (systemd-nspawn) in a network namespace
#     of its own, wired by a veth pair to a second namespace the probes run
#     in (10.213.0.0/30 and fd6e:6f77:6400::/64, plus 203.0.113.0/30 as a
#     public source; neither namespace has a route anywhere else, so no probe
#     can leave this machine);
#  4. checks from outside and inside, and prints the measurements.
# Needs root. Usage: NOWD_BINARY=/abs/path/to/nowd boot-test.sh
# NOWD_BOOT_TEST_ARTIFACTS=DIR keeps the logs (steps, console, lynis) in DIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
packer_dir="$(dirname "$here")"
repo="$(dirname "$packer_dir")"
binary="${NOWD_BINARY:-$repo/target/x86_64-unknown-linux-musl/release/nowd}"
python="${PYTHON:-$repo/.venv/bin/python}"
# The unit's exposure may not exceed this (packer/Makefile exports it).
max_exposure="${MAX_EXPOSURE:-1.5}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=trixie

guest4=10.213.0.2 probe4=10.213.0.1
# A public (non-RFC 1918) source for the unit's IP allow list: TEST-NET-3,
# reserved for documentation, routed nowhere.
public_guest4=203.0.113.2 public_probe4=203.0.113.1
guest6=fd6e:6f77:6400::2 probe6=fd6e:6f77:6400::1
ns_guest="nowd-guest-$$" ns_probe="nowd-probe-$$"

failures=0
declare -a summary=()
log() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf '   FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
measure() { summary+=("$(printf '%-32s %s' "$1" "$2")"); printf '   %s: %s\n' "$1" "$2"; }
indent() { sed 's/^/   /'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

[ "$(id -u)" -eq 0 ] || { echo "boot-test: needs root" >&2; exit 1; }
[ -x "$binary" ] || { echo "boot-test: no nowd binary at $binary (make build)" >&2; exit 1; }
[ -x "$python" ] || python=python3

work="" nspawn_pid=""
cleanup() {
  set +e
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid"  # nspawn asks the guest's systemd to power off
    for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null
    wait "$nspawn_pid" 2>/dev/null
  fi
  ip netns del "$ns_guest" 2>/dev/null
  ip netns del "$ns_probe" 2>/dev/null
  if [ -n "$work" ] && [ -d "$work" ] && [ -n "${NOWD_BOOT_TEST_ARTIFACTS:-}" ]; then
    mkdir -p "$NOWD_BOOT_TEST_ARTIFACTS"
    cp "$work"/*.log "$work"/*.dat "$NOWD_BOOT_TEST_ARTIFACTS"/ 2>/dev/null
  fi
  if [ -n "$work" ] && [ -d "$work" ]; then
    findmnt -rn -o TARGET | grep -F "$work/" | sort -r | xargs -r -n1 umount -l
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Namespaces left by a run that was killed hard (its PID is gone).
for ns in $(ip netns list | awk '{ print $1 }' | grep -E '^nowd-(guest|probe)-[0-9]+$' || true); do
  kill -0 "${ns##*-}" 2>/dev/null || ip netns del "$ns"
done

# --- 1. Base root file system -------------------------------------------------
log "base: Debian $suite root file system, as Debian's AMI has it"
base="$(bash "$here/ami-root.sh")"
ok "$base ($(cat "$(dirname "$base")/complete"))"
work="$(mktemp -d /var/tmp/nowd-boot.XXXXXX)"
root="$work/rootfs"
cp -a "$base" "$root"

# A chroot in mount, PID and network namespaces of its own: the mounts vanish
# with it, it sees (and could signal) only its own processes, and nothing in
# it can reach a network.
in_chroot() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --net --pid --fork --propagation private -- /bin/sh -c '
    r="$1"; shift
    mount -t proc proc "$r/proc" && mount -t sysfs -o ro sysfs "$r/sys" &&
    mount --rbind /dev "$r/dev" && exec chroot "$r" "$@"' in_chroot "$root" "$@"
}

# --- 2. What the EC2 build instance has, then the provisioning --------------------
log "provision: the packer steps, in a chroot"
in_chroot useradd --create-home --shell /bin/bash admin
for d in /home/admin/.ssh /root/.ssh; do
  mkdir -p "$root$d"
  echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuildInstanceKeyForTheBootTestOnly0000000 packer" \
    > "$root$d/authorized_keys"
done
# Debian's AMI has the security suite in its sources (debootstrap writes only
# the release).
cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -f "$root/etc/apt/sources.list"
mkdir -p "$root/var/lib/cloud/instances/i-0123456789abcdef0" "$root/var/lib/cloud/data"
ln -sfn /var/lib/cloud/instances/i-0123456789abcdef0 "$root/var/lib/cloud/instance"
[ -n "$(find "$root/etc/ssh" -name 'ssh_host_*')" ] || fail "base has no SSH host keys to remove"

# As packer's file provisioners upload them.
staging=/tmp/nowd-image
mkdir -p "$root$staging/files"
cp "$binary" "$root$staging/nowd"
cp "$repo/systemd/nowd.service" "$root$staging/nowd.service"
cp -a "$packer_dir/files/." "$root$staging/files/"

mapfile -t steps < <(grep -oE 'scripts/[a-z_-]+\.sh' "$packer_dir/nowd.pkr.hcl")
[ "${#steps[@]}" -gt 0 ] || { echo "boot-test: no scripts in nowd.pkr.hcl" >&2; exit 1; }
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  printf -- '-- %s\n' "$step"
  # packer uploads each script to /tmp/script_NNNN.sh and runs it as root.
  cp "$packer_dir/$step" "$root/tmp/script_$n.sh"
  chmod +x "$root/tmp/script_$n.sh"
  t="$(now)"
  if in_chroot env NOWD_STAGING="$staging" "/tmp/script_$n.sh" > "$work/step-$n.log" 2>&1; then
    sed 's/^/   | /' "$work/step-$n.log" | grep -vE '^   \| (install: /|Selecting|Preparing|Unpacking|Removing|Purging|Processing|\(Reading)' | tail -25
    ok "$step ($(elapsed "$t" "$(now)") s)"
  else
    sed 's/^/   | /' "$work/step-$n.log" | tail -40 >&2
    fail "$step"
    exit 1
  fi
  rm -f "$root/tmp/script_$n.sh"
done
image_mib="$(du -sx --block-size=1M "$root" | cut -f1)"
measure "image size (root fs)" "$image_mib MiB (lynis included, for the audit)"

# The image's own systemd judges the unit.
analysis="$(in_chroot env SYSTEMD_COLORS=0 SYSTEMD_URLIFY=0 \
              systemd-analyze security --offline=true /etc/systemd/system/nowd.service 2>&1)"
grep '^✗' <<<"$analysis" | sed 's/^/   /' || true
score="$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$analysis")"
measure "unit exposure (trixie's analyze)" "$score"
awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s != "" && s <= m) }' \
  || fail "exposure $score is above $max_exposure"

# nowd's root directory as the image ships it, to compare after nowd ran.
nowd_root=/usr/local/lib/nowd/root
root_listing() { (cd "$root$nowd_root" && find . -printf '%M %s %p\n' | sort -k3); }
root_before="$(root_listing)"

# Test-only additions, after the image is measured: the clock probe and the
# lynis profile.
mkdir -p "$root/opt/nowd-test"
cc -static -Os -o "$root/opt/nowd-test/clockprobe" "$here/clockprobe.c"
cp "$here/lynis-container.prf" "$root/opt/nowd-test/lynis.prf"
# lynis's kernel.*, fs.* and dev.* sysctl checks (KRNL-6000) would read this
# machine's kernel, not the image's: skip each of them in the audit, but
# check here that the image's sysctl files set what lynis expects.
if ! "$python" - "$root" >> "$root/opt/nowd-test/lynis.prf" <<'EOF'
import glob, os, sys
root = sys.argv[1]
# Keys the image leaves as they are, and why.
keep = {
    "kernel.modules_disabled": "would forbid loading modules after sysctl runs at boot "
                               "(nf_tables for the firewall, ENA/NVMe hot-plug)",
}
image = {}
for f in sorted(glob.glob(root + "/etc/sysctl.d/*.conf")):
    for line in open(f):
        line = line.split("#")[0].strip()
        if "=" in line:
            k, v = (x.strip() for x in line.split("=", 1))
            image[k] = v
bad = 0
for line in open(root + "/etc/lynis/default.prf"):
    if not line.startswith("config-data=sysctl;"):
        continue
    key, expected = line.split(";")[1:3]
    if key.startswith("net.") and key != "net.core.bpf_jit_harden":
        continue  # per network namespace: the guest's own, lynis checks it
    if not key.startswith(("kernel.", "fs.", "dev.", "net.")):
        continue  # not Linux
    if key not in image and not os.path.exists("/proc/sys/" + key.replace(".", "/")):
        continue  # no such key in Linux (exec-shield, maps_protect, ...)
    print(f"skip-test=KRNL-6000:{key}")
    if key in keep:
        print(f"   sysctl {key}: left as is: {keep[key]}", file=sys.stderr)
    elif image.get(key) not in expected.split("|"):
        print(f"   FAIL: sysctl {key}: the image sets {image.get(key)!r}, lynis expects {expected}",
              file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
EOF
then
  fail "the image's sysctl files do not set what lynis expects"
fi

# --- 3. Boot --------------------------------------------------------------------
log "boot: systemd-nspawn in network namespace $ns_guest"
ip netns add "$ns_guest"
ip netns add "$ns_probe"
ip link add probe0 netns "$ns_probe" type veth peer name host0 netns "$ns_guest"
ip -n "$ns_guest" link set lo up
ip -n "$ns_probe" link set lo up
ip -n "$ns_guest" addr add "$guest4/30" dev host0
ip -n "$ns_guest" addr add "$guest6/64" dev host0 nodad
ip -n "$ns_probe" addr add "$probe4/30" dev probe0
ip -n "$ns_probe" addr add "$probe6/64" dev probe0 nodad
ip -n "$ns_guest" addr add "$public_guest4/30" dev host0
ip -n "$ns_probe" addr add "$public_probe4/30" dev probe0
ip -n "$ns_guest" link set host0 up
ip -n "$ns_probe" link set probe0 up
# Every probe below runs in the probe namespace, whose only routes are the
# on-link prefixes: make sure of it before sending anything.
routes="$(ip -n "$ns_probe" route show; ip -n "$ns_probe" -6 route show | grep -v '^fe80\|^multicast')"
if grep -q default <<<"$routes"; then echo "boot-test: probe namespace has a default route" >&2; exit 1; fi
probe() { ip netns exec "$ns_probe" "$@"; }

# systemd-sysctl.service does not run in a container (/proc/sys is read-only
# there, only /proc/sys/net is the guest's own), so apply the image's net.*
# keys to the guest's namespace as it would at boot. The kernel.* and fs.*
# keys would be this machine's, and are left alone.
applied=0
while IFS='=' read -r k v; do
  k="$(echo "$k" | xargs)" v="$(echo "$v" | xargs)"
  if ip netns exec "$ns_guest" sysctl -q -w "$k=$v" 2>/dev/null; then
    applied=$((applied + 1))
  else
    echo "   sysctl $k: not per network namespace, left to the real boot"
  fi
done < <(grep -hE '^net\.' "$root"/etc/sysctl.d/*.conf)
ok "$applied net.* sysctl keys applied to the guest's namespace"

# The guest's systemd enforces IPAddressAllow=/IPAddressDeny=,
# SocketBindAllow= and DevicePolicy= with BPF programs on the unit's cgroup,
# as on an instance: that takes the unified cgroup hierarchy (Debian 13 on
# EC2 has nothing else; nspawn would copy this machine's layout, hybrid here)
# and the bpf() call, which nspawn's own system call filter refuses unless
# allowed. Without either, systemd starts nowd without those filters and
# says so only in the journal (checked below).
t_boot="$(now)"
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --boot --keep-unit --register=no --quiet -D "$root" \
  --network-namespace-path="/run/netns/$ns_guest" --capability=CAP_NET_ADMIN \
  --system-call-filter='adjtimex clock_adjtime bpf' --console=pipe \
  < /dev/null > "$work/console.log" 2>&1 &
nspawn_pid=$!

leader=""
for _ in $(seq 100); do
  leader="$(pgrep -P "$nspawn_pid" | head -1 || true)"
  [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ] && break
  sleep 0.05
done
[ -n "$leader" ] || { cat "$work/console.log" >&2; echo "boot-test: no systemd under nspawn" >&2; exit 1; }
in_guest() { nsenter -t "$leader" -m -u -i -n -p -C -r -w -- "$@"; }

first=""
for _ in $(seq 600); do
  if probe curl -sf --max-time 1 -o /dev/null "http://$guest4/now"; then first="$(now)"; break; fi
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$first" ]; then
  fail "GET /now never answered"
  in_guest systemctl --no-pager --failed >&2 || true
  for u in nftables systemd-sysctl nowd; do
    in_guest journalctl --no-pager -n 15 -u "$u.service" >&2 || true
  done
  exit 1
fi
measure "boot to first GET /now" "$(elapsed "$t_boot" "$first") s"

state="$(in_guest timeout 30 systemctl is-system-running --wait 2>/dev/null || true)"
echo "   system state: $state"
in_guest systemctl --no-legend --failed | sed 's/^/   failed unit: /' || true
[ "$(in_guest systemctl is-active nftables.service)" = active ] || fail "nftables.service is not active"
if in_guest journalctl -q -b -o cat | grep -q 'does not support BPF/cgroup firewalling'; then
  fail "the guest's systemd runs units without their BPF filters (IPAddressDeny=, SocketBind*=)"
fi

# --- 4. From outside --------------------------------------------------------------
log "outside: HTTP"
body="$(probe curl -sS --max-time 2 "http://$guest4/now")"
if [[ "$body" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]]; then ok "GET /now (IPv4): $body"; else fail "GET /now: '$body'"; fi
json="$(probe curl -sS --max-time 2 -H 'Accept: application/json' "http://$guest4/now")"
echo "   JSON: $json"
if "$python" - "$json" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
c = d["clock"]
assert isinstance(c, dict), "clock is null"
assert isinstance(c["synchronized"], bool)
assert isinstance(c["max_error_us"], int) and isinstance(c["est_error_us"], int)
EOF
then ok "clock fields present (adjtimex works in the sandbox)"; else fail "JSON clock fields missing or null"; fi
health="$(probe curl -s --max-time 2 -o "$work/healthz" -w '%{http_code}' "http://$guest4/healthz" || true)"
echo "   GET /healthz: $health $(head -c 200 "$work/healthz")"
echo "   (this machine's own clock is what the guest reads: 503 here only says the host is not NTP-synchronised)"

cap="$(sed -n 's/.*tcp dport 80 ct state new ct count over \([0-9]*\) .*/\1/p' "$root/etc/nftables.conf")"
log "outside: connection cap ($cap open connections to :80 in all)"
# The firewall counts every open connection to :80, whatever its source. nowd
# closes a connection after 5 s without data, so each held one sends a byte a
# second (a request line that never ends) while the rest are opened.
if probe "$python" - "$guest4" "${cap:-0}" <<'EOF'
import resource, socket, sys, time
host, cap = sys.argv[1], int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (cap + 1024, cap + 1024))
held, refused, last, t0 = [], 0, time.monotonic(), time.monotonic()
def trickle():
    for s in held:
        try:
            s.send(b"X")
        except OSError:
            pass
for _ in range(cap + 16):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, 80))
        held.append(s)
    except OSError:
        refused += 1
        s.close()
    if time.monotonic() - last > 1:
        trickle()
        last = time.monotonic()
print(f"   {len(held)} connections held, {refused} refused ({time.monotonic() - t0:.1f} s)")
for s in held:
    s.close()
sys.exit(0 if cap > 0 and len(held) == cap and refused == 16 else 1)
EOF
then ok "connection $((cap + 1)) and later are reset"; else fail "connection cap"; fi

log "outside: port scan of $guest4 and $guest6 from $ns_probe"
# Everything but 80 is dropped, so nmap waits out each probe: keep the waits
# short (a veth answers in microseconds).
scan() {
  probe nmap -n -Pn -T5 --max-retries 1 --min-rate 20000 --max-rtt-timeout 50ms \
    --host-timeout 120s -oG - "$@" 2>/dev/null | grep -oE '[0-9]+/open/[a-z]+' || true
}
t="$(now)"
open4="$(scan -sS -p1-65535 "$guest4")"
open6="$(scan -6 -sS -p1-65535 "$guest6")"
openu="$(scan -sU -p123 "$guest4"; scan -6 -sU -p123 "$guest6")"
echo "   TCP open (IPv4): ${open4:-none}"
echo "   TCP open (IPv6): ${open6:-none}"
echo "   UDP 123: ${openu:-not open}"
[ "$(echo "$open4" | cut -d/ -f1 | xargs)" = 80 ] || fail "IPv4: open TCP ports other than exactly 80"
[ -z "$open6" ] || fail "IPv6: open TCP ports (none expected: the firewall drops all but 80, the unit 80)"
[ -z "$openu" ] || fail "UDP 123 answers"
ok "only TCP 80 reachable, over IPv4 ($(elapsed "$t" "$(now)") s)"

log "outside: sources outside the unit's IP allow list"
# The firewall admits TCP 80 over IPv6 too, but nowd's unit allows no IPv6
# source but ::1 (the instances have IPv4 only): no answer, not even a reset.
rc=0; probe curl -s --max-time 2 -o /dev/null "http://[$guest6]/now" || rc=$?
if [ "$rc" = 28 ]; then
  ok "GET /now over IPv6 from $probe6: no answer (the unit's IP allow list)"
else
  fail "GET /now over IPv6: curl exit $rc, expected 28 (timed out)"
fi
# From 203.0.113.1, which is not in RFC 1918: the firewall lets the SYNs
# through (its TCP 80 counter grows), nowd's cgroup filter drops them (no
# answer, not even a reset), while a private source is served meanwhile.
accepted() {
  in_guest nft list chain inet filter input \
    | sed -n 's/.*tcp dport 80 counter packets \([0-9]*\) bytes.* accept.*/\1/p'
}
before="$(accepted)"
rc=0; probe curl -s --max-time 2 --interface "$public_probe4" -o /dev/null "http://$public_guest4/now" || rc=$?
after="$(accepted)"
private="$(probe curl -s --max-time 2 --interface "$probe4" -o /dev/null -w '%{http_code}' "http://$public_guest4/now" || true)"
echo "   from $public_probe4: curl exit $rc; firewall accepted $((after - before)) packet(s) meanwhile"
echo "   from $probe4 to the same address: HTTP $private"
if [ "$rc" = 28 ] && [ "$((after - before))" -ge 1 ] && [ "$private" = 200 ]; then
  ok "a public source passes the firewall and is dropped by nowd's unit"
else
  fail "public source: curl exit $rc (expected 28), $((after - before)) packets through the firewall, private source HTTP $private"
fi

# --- 5. From inside -----------------------------------------------------------------
log "inside: the nowd process"
pid="$(in_guest systemctl show -P MainPID nowd.service)"
status="$(in_guest cat "/proc/$pid/status")"
grep -E '^(Uid|Gid|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' <<<"$status" | sed 's/^/   /'
uid="$(awk '/^Uid:/ { print $2 }' <<<"$status")"
if [ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ]; then ok "dynamic user uid $uid"; else fail "uid $uid is not a dynamic user"; fi
# Which design the unit has: CAP_NET_BIND_SERVICE as an ambient capability
# (then in the host's user namespace: PrivateUsers=no), or no capability at
# all in a user namespace of its own, port 80 unprivileged by sysctl.
unit="$root/etc/systemd/system/nowd.service"
if grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$unit"; then
  want_caps=0000000000000400 want_userns=host caps_said="exactly CAP_NET_BIND_SERVICE"
else
  want_caps=0000000000000000 want_userns=own caps_said="no capability at all"
fi
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
  v="$(awk -v c="$cap:" '$1 == c { print $2 }' <<<"$status")"
  [ "$v" = "$want_caps" ] || fail "$cap is $v, not $want_caps"
done
ok "$caps_said (Inh/Prm/Eff/Bnd/Amb = $want_caps)"
grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$status" || fail "NoNewPrivs not set"
grep -q '^Seccomp:[[:space:]]*2' <<<"$status" || fail "no seccomp filter"
if [ "$(in_guest readlink "/proc/$pid/ns/user")" != "$(in_guest readlink /proc/1/ns/user)" ]; then
  userns=own
else
  userns=host
fi
if [ "$userns" = "$want_userns" ]; then ok "user namespace: $userns"; else fail "user namespace: $userns, expected $want_userns"; fi
port_start="$(in_guest sysctl -n net.ipv4.ip_unprivileged_port_start)"
echo "   net.ipv4.ip_unprivileged_port_start = $port_start"
if [ "$want_userns" = host ] && [ "$port_start" -le 80 ]; then
  fail "port 80 is unprivileged: the capability is not what lets nowd bind it"
fi
sockets="$(in_guest ss -Htulpn)"
while read -r l; do echo "   ss: $l"; done <<<"$sockets"
beyond_lo="$(echo "$sockets" | awk '{ print $5 }' | grep -vE '^(127\.[0-9.]+(%lo)?|\[::1\]|\[::ffff:127\.[0-9.]+\]):' || true)"
[ "$(echo "$beyond_lo" | xargs)" = '*:80' ] || fail "listening beyond loopback: $(echo "$beyond_lo" | xargs)"
ok "nothing but nowd listens beyond loopback"

log "inside: nowd's root directory"
# What nowd sees, through /proc/PID/root (its own mount namespace and root).
in_guest ls -A "/proc/$pid/root/" | xargs echo "   /:"
# readdir() reports a bind-mounted socket as the empty file under it: stat.
# shellcheck disable=SC2016 # expanded by the guest's shell
visible="$(in_guest sh -c 'cd "/proc/$1/root" && find . -mindepth 1 \
             \( -path ./proc -o -path ./sys -o -path ./dev \) -prune -o ! -type d -print | sort |
           while read -r f; do
             if [ -L "$f" ]; then t=link; elif [ -S "$f" ]; then t=socket; else t=file; fi
             echo "$t ${f#.}"
           done' sh "$pid")"
while read -r l; do echo "   visible: $l"; done <<<"$visible"
files="$(awk '$1 == "file" { print $2 }' <<<"$visible" | xargs)"
# systemd (254 and later) hands every service with a root of its own the
# host's os-release, read-only, as /run/host/os-release.
if [ "$files" = "/run/host/.os-release-stage/os-release /usr/local/bin/nowd" ]; then
  ok "no file but the binary and the host's os-release (besides /proc, /sys, /dev and sockets)"
else
  fail "files visible to nowd: $files"
fi
notify="$(in_guest cat "/proc/$pid/environ" | tr '\0' '\n' | sed -n 's/^NOTIFY_SOCKET=//p')"
if [ -n "$notify" ] && in_guest test -S "/proc/$pid/root$notify"; then
  ok "NOTIFY_SOCKET=$notify is a socket inside the root; the unit is $(in_guest systemctl is-active nowd.service) (Type=notify: READY=1 arrived)"
else
  fail "NOTIFY_SOCKET '$notify' is not a socket in nowd's root"
fi

log "inside: restart after kill -9"
restarts_before="$(in_guest systemctl show -P NRestarts nowd.service)"
t="$(now)"
in_guest kill -KILL "$pid"
back=""
for _ in $(seq 500); do
  if probe curl -sf --max-time 0.5 -o /dev/null "http://$guest4/now"; then back="$(now)"; break; fi
  sleep 0.01
done
restart_s="$( [ -n "$back" ] && elapsed "$t" "$back" || echo never)"
measure "restart after kill -9" "$restart_s s"
newpid="$(in_guest systemctl show -P MainPID nowd.service)"
echo "   MainPID $pid -> $newpid, NRestarts $restarts_before -> $(in_guest systemctl show -P NRestarts nowd.service)"
if [ -z "$back" ] || ! awk -v s="$restart_s" 'BEGIN { exit !(s <= 2) }'; then fail "not back within 2 s"; fi

log "inside: watchdog (nowd frozen with SIGSTOP)"
pid="$newpid"
t="$(now)"
in_guest kill -STOP "$pid"
back=""
for _ in $(seq 150); do
  sleep 0.1
  cur="$(in_guest systemctl show -P MainPID nowd.service)"
  if [ "$cur" != "$pid" ] && [ "$cur" != 0 ] && probe curl -sf --max-time 0.5 -o /dev/null "http://$guest4/now"; then
    back="$(now)"; break
  fi
done
if [ -n "$back" ]; then
  measure "frozen nowd replaced (watchdog)" "$(elapsed "$t" "$back") s (WatchdogSec=5s)"
else
  in_guest kill -CONT "$pid" 2>/dev/null || true
  fail "the watchdog did not restart a frozen nowd within 15 s"
fi

log "inside: adjtimex under nowd's own sandbox"
# A copy of nowd.service that runs the probe (a static binary too) in nowd's
# place: bound onto /usr/local/bin/nowd inside the same empty root, so every
# other line of the unit applies unchanged.
sed -e 's|^ExecStart=.*|ExecStart=/usr/local/bin/nowd clock|' \
    -e 's|^BindReadOnlyPaths=/usr/local/bin/nowd$|BindReadOnlyPaths=/opt/nowd-test/clockprobe:/usr/local/bin/nowd|' \
    -e 's|^Type=.*|Type=oneshot|' \
    -e '/^\(WatchdogSec\|Restart\|RestartSec\|NotifyAccess\|SocketBind\)/d' \
    "$root/etc/systemd/system/nowd.service" \
  | in_guest sh -c 'cat > /run/systemd/system/nowd-clockprobe.service'
in_guest systemctl daemon-reload
if in_guest systemctl start nowd-clockprobe.service; then ok "reads work, writes refused"; else fail "clock probe"; fi
in_guest journalctl -q -o cat -u nowd-clockprobe.service | grep -E 'read|write|CapBnd|CapEff' | sed 's/^/   /'

log "inside: PrivateUsers= and CAP_NET_BIND_SERVICE"
# With the kernel default (1024), an ambient CAP_NET_BIND_SERVICE binds a low
# port only outside a user namespace: the capability and PrivateUsers=yes
# exclude each other.
ip netns exec "$ns_guest" sysctl -q -w net.ipv4.ip_unprivileged_port_start=1024
bind_as() {
  in_guest systemd-run --quiet --wait --pipe -p DynamicUser=yes -p "$1" \
    -p AmbientCapabilities=CAP_NET_BIND_SERVICE -p CapabilityBoundingSet=CAP_NET_BIND_SERVICE \
    /opt/nowd-test/clockprobe bind 81 2>&1 | grep '^bind' || true
}
without="$(bind_as PrivateUsers=no)" with="$(bind_as PrivateUsers=yes)"
ip netns exec "$ns_guest" sysctl -q -w net.ipv4.ip_unprivileged_port_start="$port_start"
echo "   ambient cap, PrivateUsers=no:  $without"
echo "   ambient cap, PrivateUsers=yes: $with"
if [[ "$without" == *ok ]] && [[ "$with" == *'Permission denied' ]]; then
  ok "the capability does not work in a user namespace"
else
  fail "bind checks"
fi

log "inside: nowd's root directory on disk, after all of the above"
if [ "$(root_listing)" = "$root_before" ]; then
  ok "unchanged: $(wc -l <<<"$root_before") entries, as the image ships it"
else
  diff <(echo "$root_before") <(root_listing) | indent
  fail "systemd or nowd changed $nowd_root"
fi

log "inside: systemd-analyze verify (booted image)"
out="$(in_guest systemd-analyze verify /etc/systemd/system/nowd.service 2>&1 || echo "exit $?")"
if [ -z "$out" ]; then ok "clean"; else indent <<<"$out"; fail "verify"; fi

log "inside: chrony"
conf="$(in_guest chronyd -p -f /etc/chrony/chrony.conf 2>&1)"
indent <<<"$conf"
for line in 'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4' 'makestep 1.0 3' 'port 0' 'cmdport 0' 'rtcsync'; do
  grep -qxF "$line" <<<"$conf" || fail "chrony: missing '$line'"
done
if grep -q '^refclock' <<<"$conf"; then fail "a refclock is configured"; fi
ok "chrony configuration as intended"
echo "   chrony.service: $(in_guest systemctl is-active chrony.service || true)," \
     "$(in_guest systemctl show -P ConditionResult chrony.service | sed 's/no/condition CAP_SYS_TIME not met (a container cannot set the clock)/;s/yes/condition met/')"

log "inside: lynis audit system"
t="$(now)"
in_guest lynis audit system --quick --no-colors --profile /opt/nowd-test/lynis.prf > "$work/lynis.log" 2>&1 || true
in_guest cat /var/log/lynis.log > "$work/lynis-full.log" || true
in_guest cat /var/log/lynis-report.dat > "$work/lynis-report.dat" || true
index="$(sed -n 's/^hardening_index=//p' "$work/lynis-report.dat")"
in_guest sed -n 's/^warning\[\]=//p' /var/log/lynis-report.dat | sed 's/^/   warning: /'
in_guest sed -n 's/^suggestion\[\]=//p' /var/log/lynis-report.dat | sed 's/^/   suggestion: /'
measure "lynis hardening index" "${index:-?} ($(elapsed "$t" "$(now)") s)"
[ "${index:-0}" -ge 80 ] || fail "lynis hardening index below 80"

log "summary"
printf '   %s\n' "${summary[@]}"
if [ "$failures" -gt 0 ]; then
  echo "boot test: $failures check(s) failed"
  exit 1
fi
echo "boot test: all checks passed"
