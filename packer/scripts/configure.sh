#!/usr/bin/env bash
# Step 2 of the nowd image: check the installed configuration and enable the
# services. Works on the build instance and in a chroot without systemd
# running: `systemctl enable` only creates links; nothing is started here.
set -euo pipefail

# Refuse a configuration that would not load at boot.
chronyd -p -f /etc/chrony/chrony.conf >/dev/null
nft -c -f /etc/nftables.conf
if ! out="$(systemd-analyze verify /etc/systemd/system/nowd.service 2>&1)" || [ -n "$out" ]; then
  echo "configure: systemd-analyze verify is not clean:" >&2
  echo "$out" >&2
  exit 1
fi

# chrony replaces systemd-timesyncd (the chrony package conflicts with it).
if systemctl list-unit-files systemd-timesyncd.service >/dev/null 2>&1; then
  systemctl disable systemd-timesyncd.service 2>/dev/null || true
fi

# The network: systemd-networkd with files/etc/systemd/network/ (no
# cloud-init, no netplan); network-online.target waits for its DHCP lease.
systemctl enable systemd-networkd.service systemd-networkd-wait-online.service
systemctl enable nowd.service chrony.service nftables.service
systemctl set-default multi-user.target

echo "configure: enabled systemd-networkd, nowd, chrony, nftables"
