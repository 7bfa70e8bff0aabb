#!/usr/bin/env bash
# Step 1 of the nowd image: packages, the nowd binary and unit, and the
# configuration files, from the staging directory that packer's file
# provisioner uploaded (NOWD_STAGING, /tmp/nowd-image by default):
#   nowd            the static musl binary
#   nowd.service    systemd/nowd.service
#   files/          packer/files/, laid out as on disk
set -euo pipefail

staging="${NOWD_STAGING:-/tmp/nowd-image}"
export DEBIAN_FRONTEND=noninteractive

for f in "$staging/nowd" "$staging/nowd.service" "$staging/files"; do
  [ -e "$f" ] || { echo "install: $f is missing" >&2; exit 1; }
done

# chrony disciplines the clock nowd serves; nftables is the firewall.
# Only what is missing: a second run (or a base that has them) needs no network.
packages=(chrony nftables)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The binary must be a static x86-64 ELF: the image has no musl, and a loader
# would not be allowed to run anyway (ExecPaths= in the unit).
elf_u() { od -An -t "u$1" -j "$2" -N "$1" "$staging/nowd" | tr -d ' '; }
if [ "$(od -An -c -N 4 "$staging/nowd" | tr -d ' ')" != '177ELF' ] || [ "$(elf_u 2 18)" != 62 ]; then
  echo "install: $staging/nowd is not an x86-64 ELF binary" >&2
  exit 1
fi
phoff="$(elf_u 8 32)" phentsize="$(elf_u 2 54)" phnum="$(elf_u 2 56)"
for ((i = 0; i < phnum; i++)); do
  if [ "$(elf_u 4 $((phoff + i * phentsize)))" = 3 ]; then  # PT_INTERP
    echo "install: $staging/nowd is dynamically linked (has an interpreter)" >&2
    exit 1
  fi
done
install -D -o root -g root -m 0755 "$staging/nowd" /usr/local/bin/nowd
install -D -o root -g root -m 0644 "$staging/nowd.service" /etc/systemd/system/nowd.service

# nowd's root directory (RootDirectory= in the unit): empty but for the mount
# points systemd puts its private /dev, /proc, /sys, /run, /tmp, /var/tmp,
# /root (ProtectHome=) and the binary on, read-only to everyone. Made here so
# that systemd does not have to create them under /usr at the first start;
# validate.sh checks that nothing else is in it.
nowd_root=/usr/local/lib/nowd/root
rm -rf "$nowd_root"
install -d -o root -g root -m 0555 "$nowd_root"
for d in dev etc proc root run sys tmp usr usr/local usr/local/bin var var/tmp; do
  install -d -o root -g root -m 0555 "$nowd_root/$d"
done
install -o root -g root -m 0444 /dev/null "$nowd_root/usr/local/bin/nowd"

# Configuration files, as they stand on disk (replacing the packages' own).
(cd "$staging/files" && find . -type f) | sort | while read -r rel; do
  dest="/${rel#./}"
  install -D -o root -g root -m 0644 "$staging/files/$rel" "$dest"
  echo "install: $dest"
done

echo "install: nowd $(stat -c %s /usr/local/bin/nowd) bytes, chrony $(dpkg-query -W -f='${Version}' chrony), nftables $(dpkg-query -W -f='${Version}' nftables)"
