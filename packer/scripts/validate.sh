#!/usr/bin/env bash
# Step 5 of the nowd image, the last: fail the build if the image would leave
# with anything of the build instance in it, or without what it is for.
# Changes nothing.
set -euo pipefail

failures=0
fail() { echo "validate: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "validate: ok: $*"; }

# Left from the build instance.
keys="$(find /etc/ssh -maxdepth 1 -name 'ssh_host_*' 2>/dev/null)"
if [ -n "$keys" ]; then fail "SSH host keys left: $keys"; else ok "no SSH host keys"; fi

auth="$(find /root /home -name 'authorized_keys*' 2>/dev/null)"
if [ -n "$auth" ]; then fail "authorized keys left: $auth"; else ok "no authorized keys"; fi

cloud="$(find /var/lib/cloud -mindepth 1 -maxdepth 1 \( -name instance -o -name instances -o -name data -o -name sem \) 2>/dev/null)"
if [ -n "$cloud" ]; then fail "cloud-init instance state left: $cloud"; else ok "no cloud-init instance state"; fi

if [ -d /tmp/nowd-image ]; then fail "staging directory /tmp/nowd-image left"; else ok "no staging files"; fi

if [ -s /etc/machine-id ]; then
  fail "/etc/machine-id is set: every instance would share it"
else
  ok "machine id reset"
fi

# Nothing that accepts logins or upgrades itself.
for unit in ssh.service ssh.socket sshd.service; do
  state="$(systemctl is-enabled "$unit" 2>/dev/null || true)"
  case "$state" in
    enabled | enabled-runtime | static | alias | indirect | generated)
      fail "$unit is $state" ;;
  esac
done
if [ -e /usr/sbin/sshd ]; then fail "sshd is installed"; else ok "no sshd"; fi
if dpkg-query -W -f='${Status}' unattended-upgrades 2>/dev/null | grep -q 'install ok installed'; then
  fail "unattended-upgrades is installed"
else
  ok "no unattended-upgrades"
fi

# What the image is for.
if [ -x /usr/local/bin/nowd ]; then ok "nowd installed"; else fail "/usr/local/bin/nowd missing"; fi
# nowd's root directory: directories and the empty mount point of the
# binary, nothing that could be read or run in there.
nowd_root=/usr/local/lib/nowd/root
if [ ! -d "$nowd_root" ]; then
  fail "$nowd_root missing"
else
  extra="$(find "$nowd_root" -mindepth 1 ! -type d ! \( -path "$nowd_root/usr/local/bin/nowd" -type f -empty \))"
  if [ -n "$extra" ]; then fail "$nowd_root holds more than mount points: $extra"; else ok "nowd's root holds nothing but mount points"; fi
fi
for unit in nowd.service chrony.service nftables.service; do
  if [ "$(systemctl is-enabled "$unit" 2>/dev/null || true)" = enabled ]; then
    ok "$unit enabled"
  else
    fail "$unit is not enabled"
  fi
done
# How a new instance gets its network: cloud-init's EC2 datasource reads
# the instance's interfaces (by MAC address) from the metadata service and
# writes a netplan configuration for them, which systemd-networkd applies
# with DHCP; before that, cloud-init's own DHCP client reaches the service.
# Without cloud-init the image would keep no network configuration at all
# that matches a new instance's interface.
if dpkg-query -W -f='${Status}' cloud-init 2>/dev/null | grep -q 'install ok installed'; then
  ok "cloud-init installed"
  if [ "$(systemctl is-enabled cloud-init-local.service 2>/dev/null || true)" = enabled ]; then
    ok "cloud-init enabled"
  else
    fail "cloud-init-local.service is not enabled"
  fi
  dhcp=""
  for c in dhcpcd udhcpc dhclient; do
    if command -v "$c" >/dev/null 2>&1; then dhcp="$c"; fi
  done
  if [ -n "$dhcp" ]; then ok "cloud-init has a DHCP client ($dhcp)"; else fail "no DHCP client for cloud-init"; fi
else
  fail "cloud-init is not installed: a new instance would not configure its network"
fi
if grep -qx 'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4' /etc/chrony/chrony.conf; then
  ok "chrony uses the Amazon Time Sync Service"
else
  fail "chrony.conf is not the image's"
fi

if [ "$failures" -gt 0 ]; then
  echo "validate: $failures check(s) failed" >&2
  exit 1
fi
echo "validate: image is clean"
