#!/usr/bin/env bash
# Step 3 of the nowd image: harden the OS. The image is immutable: it is
# replaced by a new build, never upgraded or logged into, so everything that
# exists for upgrades or logins goes. SSH is only disabled here (the build
# still talks to this instance over it); cleanup.sh removes it last.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- Packages not needed --------------------------------------------------------
# No automatic upgrades: a new image replaces the old one. No compilers, no
# mail, no cron (systemd timers do the little that is left), no network
# clients or servers that nothing here uses.
unwanted=(
  unattended-upgrades apt-listchanges needrestart reportbug installation-report
  gcc gcc-14 g++ g++-14 cpp cpp-14 make build-essential
  exim4 exim4-base exim4-daemon-light postfix
  cron cron-daemon-common anacron at
  telnet inetutils-telnet ftp tnftp netcat-traditional netcat-openbsd rsync
  nfs-common rpcbind avahi-daemon ntpsec ntpsec-ntpdate ntpdate systemd-timesyncd
)
purge=()
for pkg in "${unwanted[@]}"; do
  if installed "$pkg"; then purge+=("$pkg"); fi
done
if [ "${#purge[@]}" -gt 0 ]; then
  echo "harden: purging ${purge[*]}"
  apt-get purge -y -qq "${purge[@]}"
fi
apt-get autoremove --purge -y -qq
# No periodic apt runs at all (unattended-upgrades is gone; these would still
# download package lists at random times).
systemctl mask apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service

# No first-boot wizard: it would wait for answers on the serial console.
systemctl mask systemd-firstboot.service

# --- SSH -------------------------------------------------------------------------
# Off from the next boot on (this build's own session keeps running).
# cleanup.sh removes the package as the build's last change.
if systemctl list-unit-files ssh.service >/dev/null 2>&1; then
  systemctl disable ssh.service ssh.socket 2>/dev/null || true
  systemctl mask ssh.service ssh.socket
fi

# --- PAM ---------------------------------------------------------------------
# Cheap, for whoever logs in on the console in an emergency: a private $TMPDIR
# per session, and password strength checks should a password ever be set.
pam_packages=()
for pkg in libpam-tmpdir libpam-passwdqc; do
  if ! installed "$pkg"; then pam_packages+=("$pkg"); fi
done
if [ "${#pam_packages[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pam_packages[@]}"
fi

# --- The cloud guest ----------------------------------------------------------------
# A nowd instance takes nothing from the metadata service: no user data, no
# SSH keys, no role, no hostname. Its network is files/etc/systemd/network/
# (DHCP on any ethernet interface, by systemd-networkd), its time comes from
# 169.254.169.123. So the general-purpose cloud guest goes: cloud-init (a
# Python program that runs as root at every boot and parses what the
# metadata service says), netplan, the growroot tools (the launch template
# keeps the snapshot's size), amazon-ec2-utils (its EBS NVMe timeouts stay,
# as files/etc/udev/rules.d/), the resolver (nothing looks a name up), the
# DHCP clients cloud-init used, polkit (nothing asks it; it brings a set-uid
# helper), and with them every interpreter. After the PAM modules above: on
# the build instance, names resolve until here. The SSH client goes with the
# server in cleanup.sh.
cloud_guest=(
  cloud-init cloud-guest-utils cloud-initramfs-growroot netplan.io amazon-ec2-utils
  systemd-resolved libnss-resolve libnss-myhostname isc-dhcp-client isc-dhcp-common dhcpcd-base
  polkitd pkexec
)
# Interpreters, by package name: the same pattern as validate.sh's (a
# static test keeps the two equal). perl-base stays: dpkg needs it.
interpreter_packages='^(python[0-9.]*(-minimal)?|python3-.+|libpython[0-9.]+(-minimal|-stdlib)?|perl|perl-modules-[0-9.]+|libperl[0-9.]+|ruby.*|libruby.*|lua[0-9.]*|tcl[0-9.]*|nodejs|php.*|guile-[0-9.]+)$'
mapfile -t interpreters < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
  | awk '$1 == "ii" { print $2 }' | grep -E "$interpreter_packages" || true)
purge=()
for pkg in "${cloud_guest[@]}"; do
  if installed "$pkg"; then purge+=("$pkg"); fi
done
purge+=("${interpreters[@]}")
if [ "${#purge[@]}" -gt 0 ]; then
  echo "harden: purging ${purge[*]}"
  apt-get purge -y -qq "${purge[@]}"
fi
apt-get autoremove --purge -y -qq
rm -rf /etc/netplan /etc/cloud /var/lib/cloud
# The resolver's stub link would point nowhere.
if [ -L /etc/resolv.conf ]; then rm -f /etc/resolv.conf && : > /etc/resolv.conf; fi
for pkg in systemd udev chrony nftables iproute2; do
  installed "$pkg" || { echo "harden: purging the cloud guest took $pkg with it" >&2; exit 1; }
done
# Packages removed earlier but whose configuration stayed behind.
mapfile -t leftover < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "rc" { print $2 }')
if [ "${#leftover[@]}" -gt 0 ]; then
  dpkg --purge "${leftover[@]}"
fi

# --- Logins ----------------------------------------------------------------------
# Nobody logs in (no sshd, no passwords), but the defaults should still be
# strict for whatever creates a user or a file: umask 027, password hashing
# with many rounds, password ageing.
set_login_def() {
  if grep -qE "^[#[:space:]]*$1[[:space:]]" /etc/login.defs; then
    sed -i -E "s|^[#[:space:]]*$1[[:space:]].*|$1 $2|" /etc/login.defs
  else
    echo "$1 $2" >> /etc/login.defs
  fi
}
set_login_def UMASK 027
set_login_def SHA_CRYPT_MIN_ROUNDS 100000
set_login_def SHA_CRYPT_MAX_ROUNDS 100000
set_login_def YESCRYPT_COST_FACTOR 8
set_login_def PASS_MAX_DAYS 90
set_login_def PASS_MIN_DAYS 1
set_login_def PASS_WARN_AGE 14
set_login_def FAILLOG_ENAB yes
# Shells (a console in an emergency): the same umask, no core files, and a
# session left idle for 15 minutes ends.
printf '%s\n' 'umask 027' 'ulimit -c 0' > /etc/profile.d/90-nowd.sh
chmod 0644 /etc/profile.d/90-nowd.sh
if ! grep -q '^readonly TMOUT=' /etc/profile; then
  printf '\n# nowd image: idle shells end after 15 minutes.\nreadonly TMOUT=900\nexport TMOUT\n' >> /etc/profile
fi

# --- Core dumps -------------------------------------------------------------------
# Also limited by limits.d, coredump.conf.d and fs.suid_dumpable (files/).
mkdir -p /etc/systemd/system.conf.d
printf '[Manager]\nDefaultLimitCORE=0\n' > /etc/systemd/system.conf.d/90-nowd-no-core.conf
chmod 0644 /etc/systemd/system.conf.d/90-nowd-no-core.conf

# --- File permissions ---------------------------------------------------------
# Configuration that only root needs to read.
for f in /etc/crontab /etc/ssh/sshd_config /etc/sudoers /boot/grub/grub.cfg; do
  if [ -f "$f" ]; then chmod go-rwx "$f"; fi
done
for d in /etc/cron.d /etc/cron.daily /etc/cron.hourly /etc/cron.weekly /etc/cron.monthly /etc/sudoers.d; do
  if [ -d "$d" ]; then chmod 0700 "$d"; fi
done
chmod 0700 /root
# Home directories are private to their owners.
for d in /home/*; do
  if [ -d "$d" ]; then chmod 0750 "$d"; fi
done

# --- Read-only root -------------------------------------------------------------------
# Nothing changes the image at run time, so the root file system is mounted
# read-only (systemd-remount-fs applies /etc/fstab after the initramfs
# mounted it). What must write goes to memory: /var/tmp (nowd's
# PrivateTmp=) on a tmpfs, the journal (Storage=volatile), chrony's drift
# file (/run/chrony), the machine id (systemd mounts one over the empty
# file). No growfs: the root cannot grow read-only, and the launch template
# keeps the snapshot's size. No fsck at boot (pass 0): the file system is
# never written after this build, so a check could only find what the
# build left, and it cost 3.5 s of every boot under TCG.
if ! awk '$1 !~ /^#/ && $2 == "/" { found = 1 } END { exit !found }' /etc/fstab; then
  echo "harden: /etc/fstab has no entry for /" >&2
  exit 1
fi
awk 'BEGIN { OFS = "\t" }
     $1 !~ /^#/ && $2 == "/" {
       n = split($4, o, ","); opts = "ro"
       for (i = 1; i <= n; i++)
         if (o[i] != "rw" && o[i] != "ro" && o[i] != "defaults" && o[i] != "x-systemd.growfs") opts = opts "," o[i]
       $4 = opts; $5 = 0; $6 = 0
     }
     $1 !~ /^#/ && $2 == "/var/tmp" { next }
     { print }
     END { print "tmpfs", "/var/tmp", "tmpfs", "nosuid,nodev,mode=1777,size=64M", "0", "0" }' \
  /etc/fstab > /etc/fstab.nowd
mv /etc/fstab.nowd /etc/fstab
chmod 0644 /etc/fstab
# What would still try to write there: networkd's persistent storage
# (nothing of it is needed), the journal's directory (Storage=volatile),
# AppArmor's profile cache (profiles are compiled at each boot instead).
systemctl mask systemd-networkd-persistent-storage.service
rm -rf /var/log/journal
if [ -f /etc/apparmor/parser.conf ] && ! grep -qx 'skip-cache' /etc/apparmor/parser.conf; then
  printf '\n# nowd image: the root file system is read-only.\nskip-cache\n' >> /etc/apparmor/parser.conf
fi
# Compiling at each boot costs (55 s in the VM test for them all, 7 s for
# one under TCG): only the profiles that programs ship with themselves are
# loaded (chrony's usr.sbin.chronyd). The apparmor package's own collection,
# for desktop and container programs (1password ... vivaldi-bin) and for
# lsb_release and unix_chkpwd, which nothing here runs, is deleted, not
# linked into disable/: the boot script logs each disabled profile from a
# process of its own, some 3 s for the hundred of them under TCG. The image
# is never upgraded, so dpkg never puts them back.
if installed apparmor; then
  dpkg-query -L apparmor | grep -E '^/etc/apparmor\.d/[^/]+$' | while read -r profile; do
    if [ -f "$profile" ]; then rm -f "$profile" "/etc/apparmor.d/disable/${profile##*/}"; fi
  done
fi

# --- Boot ---------------------------------------------------------------------
# The initramfs as files/etc/initramfs-tools/ describes it (the purges above
# rebuilt it too, but only if they took a hook with them).
update-initramfs -u -k all

echo "harden: done"
