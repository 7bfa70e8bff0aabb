#!/usr/bin/env bash
# The stand-in for Debian's AMI that the image tests provision: prints the
# path of a Debian 13 (trixie) root file system, made once and cached
# outside the repository (NOWD_IMAGE_CACHE, /var/cache/nowd-image):
#  1. debootstrap minbase plus the packages below (keyed by suite and list);
#  2. on top of it, in a cache of its own, what Debian's EC2 AMI has that
#     minbase lacks: the cloud kernel, cloud-init and the rest of the package
#     lists of Debian's cloud image build for EC2 (debian-cloud-images,
#     config_space/bookworm/package_config/{SYSTEM_BOOT,CLOUD,EC2}, the lists
#     trixie's images are built from:
#     https://salsa.debian.org/cloud-team/debian-cloud-images/-/tree/master/config_space/bookworm/package_config).
# Both layers are rebuilt after NOWD_IMAGE_CACHE_DAYS (7) days. Needs root
# and, for a new layer, the Debian mirror. Usage: root="$(ami-root.sh)"
set -euo pipefail

cache_root="${NOWD_IMAGE_CACHE:-/var/cache/nowd-image}"
cache_max_age_days="${NOWD_IMAGE_CACHE_DAYS:-7}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
retry_wait_s="${NOWD_IMAGE_RETRY_WAIT_S:-10}"
suite=trixie
# Debian's AMI has these (and more); chrony, nftables and the PAM modules are
# what the scripts install (here without network); lynis is for the audit.
base_packages=(systemd systemd-sysv dbus udev iproute2 procps sudo apt
               openssh-server unattended-upgrades chrony nftables
               libpam-tmpdir libpam-passwdqc lynis)
# Debian's EC2 lists, less awscli (some 100 MiB of Python that nothing at
# boot uses) and ssh-import-id (keys come from the metadata service);
# apparmor and zstd are the kernel's recommends, which the lists name.
ami_packages=(linux-image-cloud-amd64 cloud-init cloud-guest-utils amazon-ec2-utils
              cloud-initramfs-growroot netplan.io systemd-resolved libnss-myhostname
              polkitd libpam-systemd apparmor zstd iputils-ping netbase less)

log() { echo "ami-root: $*" >&2; }
# What went wrong, from a step's log: apt's and debootstrap's error lines
# (a mirror's 404, a hash mismatch, a name that did not resolve), or else
# the log's last lines.
cause() {
  grep -E '^(E:|Err:|W: Failed)|[Ff]ailed to fetch|Temporary failure|Connection (refused|timed out|reset)|Hash Sum mismatch' "$1" \
    | tail -15 | grep . || tail -8 "$1"
}
# `attempts name log command...`: the mirror's transient failures (a
# dropped connection, a mirror mid-sync) pass on a retry; each failure
# prints its cause, and the last one fails the build with it.
attempts() {
  local what="$1" logf="$2" n
  shift 2
  for n in 1 2 3; do
    if "$@" > "$logf" 2>&1; then return 0; fi
    log "$what failed (attempt $n of 3):"
    cause "$logf" | sed 's/^/ami-root:   /' >&2
    [ "$n" = 3 ] || sleep $((n * retry_wait_s))
  done
  log "$what failed 3 times; giving up"
  return 1
}
fresh() { [ -f "$1/complete" ] && [ -z "$(find "$1/complete" -mtime +"$cache_max_age_days")" ]; }

# A layer is built in DIR.tmp and renamed when complete; older layers of the
# same kind (another package list) are removed.
publish() {
  local dir="$1" kind="$2"
  date -u +%FT%TZ > "$dir.tmp/complete"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  find "$cache_root" -mindepth 1 -maxdepth 1 -name "$kind" ! -path "$dir" -exec rm -rf {} +
}

key="$(printf '%s\n' "$suite" "${base_packages[@]}" | sha256sum | cut -c1-12)"
base="$cache_root/$suite-$key"
if ! fresh "$base"; then
  log "debootstrap $suite into $base"
  rm -rf "$base" "$base.tmp"
  mkdir -p "$base.tmp"
  # A failed debootstrap leaves a half-made root: each attempt starts afresh.
  bootstrap() {
    rm -rf "$base.tmp/rootfs"
    debootstrap --variant=minbase --include="$(IFS=,; echo "${base_packages[*]}")" \
      "$suite" "$base.tmp/rootfs" "$mirror"
  }
  attempts debootstrap "$base.tmp/debootstrap.log" bootstrap
  rm -rf "$base.tmp/rootfs/var/cache/apt/archives/"*.deb
  publish "$base" "$suite-????????????"
fi

ami_key="$(printf '%s\n' "$key" "${ami_packages[@]}" | sha256sum | cut -c1-12)"
ami="$cache_root/$suite-ami-$ami_key"
if ! fresh "$ami" || [ "$ami/complete" -ot "$base/complete" ]; then
  log "installing ${ami_packages[*]} into $ami"
  rm -rf "$ami" "$ami.tmp"
  mkdir -p "$ami.tmp"
  cp -a "$base/rootfs" "$ami.tmp/rootfs"
  cp /etc/resolv.conf "$ami.tmp/rootfs/etc/resolv.conf"
  # In a mount namespace of its own: the mounts vanish with it. apt resumes
  # where a failed attempt stopped (dpkg --configure -a, then the rest).
  install_ami_packages() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare --mount --propagation private -- /bin/sh -c '
      r="$1"; shift
      mount -t proc proc "$r/proc" && mount -t sysfs -o ro sysfs "$r/sys" &&
      mount --rbind /dev "$r/dev" &&
      chroot "$r" sh -c "export DEBIAN_FRONTEND=noninteractive; dpkg --configure -a &&
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $*"
    ' sh "$ami.tmp/rootfs" "${ami_packages[@]}"
  }
  attempts "apt-get install" "$ami.tmp/install.log" install_ami_packages
  rm -rf "$ami.tmp/rootfs/var/cache/apt/archives/"*.deb "$ami.tmp/rootfs/var/lib/apt/lists/"*
  # systemd-resolved made it its own symlink; otherwise leave no host's resolver.
  [ -L "$ami.tmp/rootfs/etc/resolv.conf" ] || : > "$ami.tmp/rootfs/etc/resolv.conf"
  publish "$ami" "$suite-ami-*"
fi
echo "$ami/rootfs"
