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
# cloud-init, no netplan). Nothing waits for network-online.target (chrony
# retries until its requests can be sent, chrony.service.d/), so its waiter
# is not started: one program less at boot. Enabling networkd enables it and
# the network generator (ip= on the kernel command line, unused) with it.
systemctl enable systemd-networkd.service
systemctl disable systemd-networkd-wait-online.service systemd-network-generator.service
systemctl enable nowd.service chrony.service nftables.service
systemctl set-default multi-user.target

# What a boot of this image does not start. Each is one more program on the
# boot's path (under TCG in the VM test they took seconds each, on one
# vCPU), and none serves the time:
#  - kmod-static-nodes and systemd-tmpfiles-setup-dev(-early): device nodes
#    for modules that load on first open (loop-control, net/tun, fuse, kvm,
#    vhost-net, ...; the kernel's modules.devname) and their permissions
#    (tmpfiles.d/static-nodes-permissions.conf). Nothing here opens them;
#    the devices the kernel has come from devtmpfs and udev as before.
#  - the kernel's debug, tracing, configfs, FUSE-control and hugepage file
#    systems: nothing here uses them (and debugfs and tracefs unmounted are
#    less of the kernel in reach), nor the modules configfs and FUSE load.
#  - modprobe@drm (logind wants it): no display.
#  - e2scrub_reap: it removes e2scrub's leftover LVM snapshots; no LVM.
#  - a login prompt on tty1: no keyboard reaches it on EC2. The serial
#    console's (ttyS0, EC2 Serial Console) stays.
systemctl mask kmod-static-nodes.service systemd-tmpfiles-setup-dev-early.service \
  systemd-tmpfiles-setup-dev.service sys-kernel-debug.mount sys-kernel-tracing.mount \
  sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
  modprobe@configfs.service modprobe@fuse.service modprobe@drm.service
# Generators run at every boot (and reload) before any unit starts; these
# find nothing to do here: partitions by GPT type (the root is in fstab),
# hibernation, rc.local, systemd.run= and system updates, SSH over vsock (no
# sshd), SysV scripts (every service here has a unit), the TPM. A link to
# /dev/null in /etc masks a generator. fstab's, getty's (the serial
# console's login) and the debug generator (systemd.mask= on the kernel
# command line, for an emergency) stay.
mkdir -p /etc/systemd/system-generators
for gen in systemd-gpt-auto-generator systemd-hibernate-resume-generator \
  systemd-rc-local-generator systemd-run-generator systemd-ssh-generator \
  systemd-system-update-generator systemd-sysv-generator systemd-tpm2-generator; do
  ln -sfn /dev/null "/etc/systemd/system-generators/$gen"
done
# (systemd and e2fsprogs ship both units; list-unit-files names a template,
# never its instance, so it cannot guard getty@tty1.)
systemctl disable e2scrub_reap.service getty@tty1.service

echo "configure: enabled systemd-networkd, nowd, chrony, nftables"
