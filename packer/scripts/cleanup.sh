#!/usr/bin/env bash
# Step 4 of the nowd image: remove everything that belongs to the build
# instance rather than to the image: SSH host keys and authorized keys,
# cloud-init's per-instance state, logs, the machine id, the staging files,
# package caches. Then, as the build's very last change, remove the SSH
# server: the session running this script stays open (sshd only forks per
# connection), so the build can still run validate.sh and stop the instance.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

staging="${NOWD_STAGING:-/tmp/nowd-image}"

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# cloud-init's state of the build instance (harden.sh purged cloud-init).
rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data \
       /var/lib/cloud/sem /var/lib/cloud/seed /var/log/cloud-init*.log

# SSH: host keys and every authorized_keys file.
rm -f /etc/ssh/ssh_host_*
find /root /home -name authorized_keys -type f -delete 2>/dev/null || true
find /root /home -name authorized_keys2 -type f -delete 2>/dev/null || true

# Shell histories, logs and the journal of the build.
find /root /home -maxdepth 2 -name '.*_history' -type f -delete 2>/dev/null || true
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
rm -rf /var/log/journal/*

# A new machine id on every instance: an empty /etc/machine-id makes systemd
# generate one at boot. (Not "uninitialized": that means first boot, and
# systemd-firstboot would then prompt on the serial console.)
if [ -e /etc/machine-id ]; then
  truncate -s 0 /etc/machine-id
fi
# D-Bus's copy is a link to it (systemd-tmpfiles would make one at boot,
# which the read-only root refuses).
rm -f /var/lib/dbus/machine-id
if [ -d /var/lib/dbus ]; then ln -s /etc/machine-id /var/lib/dbus/machine-id; fi
rm -f /var/lib/systemd/random-seed /var/lib/systemd/credential.secret

# The build instance's name (cloud-init wrote it there): every instance is
# called nowd instead (nothing looks the name up; no cloud-init renames it).
echo nowd > /etc/hostname

rm -rf "$staging" /tmp/* /var/tmp/* 2>/dev/null || true

# Last: SSH itself, the server and the client (whose ssh-keysign is set-uid
# root). Its units were masked by harden.sh.
sshd_packages=()
for pkg in openssh-server openssh-sftp-server openssh-client; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    sshd_packages+=("$pkg")
  fi
done
if [ "${#sshd_packages[@]}" -gt 0 ]; then
  apt-get purge -y -qq "${sshd_packages[@]}"
  apt-get autoremove --purge -y -qq
  rm -f /etc/ssh/ssh_host_*
fi

echo "cleanup: done"
