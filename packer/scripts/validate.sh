#!/usr/bin/env bash
# Step 5 of the nowd image, the last: fail the build if the image would leave
# with anything of the build instance in it, or without what it is for.
# Changes nothing.
set -euo pipefail

failures=0
fail() { echo "validate: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "validate: ok: $*"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Left from the build instance.
keys="$(find /etc/ssh -maxdepth 1 -name 'ssh_host_*' 2>/dev/null || true)"
if [ -n "$keys" ]; then fail "SSH host keys left: $keys"; else ok "no SSH host keys"; fi

auth="$(find /root /home -name 'authorized_keys*' 2>/dev/null || true)"
if [ -n "$auth" ]; then fail "authorized keys left: $auth"; else ok "no authorized keys"; fi

cloud="$(find /var/lib/cloud -mindepth 1 -maxdepth 1 \( -name instance -o -name instances -o -name data -o -name sem \) 2>/dev/null || true)"
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
# No cloud guest: nothing reads the metadata service, nothing interprets.
for pkg in cloud-init netplan.io cloud-guest-utils amazon-ec2-utils; do
  if installed "$pkg"; then fail "$pkg is installed"; fi
done
for d in /etc/cloud /etc/netplan /var/lib/cloud; do
  if [ -e "$d" ]; then fail "$d is left"; fi
done
# The same pattern as harden.sh's (a static test keeps the two equal).
interpreter_packages='^(python[0-9.]*(-minimal)?|python3-.+|libpython[0-9.]+(-minimal|-stdlib)?|perl|perl-modules-[0-9.]+|libperl[0-9.]+|ruby.*|libruby.*|lua[0-9.]*|tcl[0-9.]*|nodejs|php.*|guile-[0-9.]+)$'
left="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | grep -E "$interpreter_packages" || true)"
left+="$(find /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin -maxdepth 1 \( -name 'python*' -o -name 'ruby*' -o -name 'node' -o -name 'nodejs' -o -name 'lua*' -o -name 'tclsh*' -o -name 'php*' -o -name 'guile*' \) 2>/dev/null)"
if [ -n "$left" ]; then fail "interpreters left: $(echo "$left" | tr '\n' ' ')"; else ok "no interpreter (perl-base stays for dpkg)"; fi
# How a new instance gets its network: DHCP by systemd-networkd on any
# ethernet interface, whatever its MAC.
if [ "$(systemctl is-enabled systemd-networkd.service 2>/dev/null || true)" = enabled ] \
   && grep -qx 'Type=ether' /etc/systemd/network/80-nowd-ethernet.network \
   && grep -qx 'DHCP=ipv4' /etc/systemd/network/80-nowd-ethernet.network; then
  ok "systemd-networkd takes DHCP on any ethernet interface"
else
  fail "no network for a new instance (systemd-networkd, 80-nowd-ethernet.network)"
fi
if grep -q 'ATTR{queue/io_timeout}="4294967295"' /etc/udev/rules.d/70-ec2-nvme-devices.rules 2>/dev/null; then
  ok "EBS NVMe I/O timeout rule"
else
  fail "the EBS NVMe I/O timeout rule is missing"
fi
if awk '$1 !~ /^#/ && $2 == "/" && $4 ~ /(^|,)ro(,|$)/ { found = 1 } END { exit !found }' /etc/fstab; then
  ok "root file system mounted read-only"
else
  fail "/etc/fstab does not mount / read-only"
fi
if grep -qx 'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4' /etc/chrony/chrony.conf; then
  ok "chrony uses the Amazon Time Sync Service"
else
  fail "chrony.conf is not the image's"
fi

echo "validate: packages in the image: $(dpkg-query -W -f='${db:Status-Abbrev}\n' | grep -c '^ii')"
echo "validate: setuid binaries: $(find / -xdev -type f -perm -4000 2>/dev/null | sort | tr '\n' ' ')"

if [ "$failures" -gt 0 ]; then
  echo "validate: $failures check(s) failed" >&2
  exit 1
fi
echo "validate: image is clean"
