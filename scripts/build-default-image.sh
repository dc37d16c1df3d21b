#!/usr/bin/env bash
# Builds the default image (Debian bookworm, debootstrap from Debian's packages) once, into a cache
# directory outside the repo. The result is immutable: snapshots reference its files byte for byte,
# so an existing image is never modified; a new recipe gets a new directory.
set -euo pipefail
CACHE=${FAAS_CACHE_DIR:-/var/cache/faas}
RECIPE_VERSION=4  # bump when the recipe below changes (install.sh then builds the new one once)
# What the documented examples use (every docs snippet runs against this image, tests/docs/):
# python3 with venv and pip, git, curl, C build tools and Node.js (Debian's own packages).
PACKAGES="bash,coreutils,procps,python3,python3-venv,python3-pip,curl,git,ca-certificates,iproute2,less,findutils,grep,sed,tar,gzip,xz-utils,build-essential,nodejs"
name="debian-bookworm-r${RECIPE_VERSION}"
dest="$CACHE/images/$name"
if [ -f "$dest/.complete" ]; then
  chmod 700 "$CACHE/images" "$dest"   # an older install left them open to every user
  echo "default image: cached at $dest"
  exit 0
fi
mkdir -p "$CACHE/images"
tmp=$(mktemp -d "$CACHE/images/.build-$name.XXXXXX")
# Only root may enter an image (its setuid files and device nodes are for sandboxes; gVisor's
# gofer runs as root): see docs/security/images.md.
chmod 700 "$CACHE/images" "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "default image: debootstrap bookworm (a few minutes) ..."
mirror=${FAAS_DEBIAN_MIRROR:-$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -oE 'https?://[^ ]+' | grep -v security | head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
  tail -n 30 "$tmp/debootstrap.log" >&2; echo "debootstrap failed (log above)" >&2; exit 1; }
root="$tmp/rootfs"
# HTTPS inside instances goes through this network's intercepting proxy: trust what the host trusts.
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
# A resolver that answers (or fails fast) and a hosts file, so tools never stall on reverse DNS.
grep -E '^nameserver' /etc/resolv.conf | grep -vE '127\.|::1' > "$root/etc/resolv.conf" || true
[ -s "$root/etc/resolv.conf" ] || echo "nameserver 1.1.1.1" > "$root/etc/resolv.conf"
echo "options timeout:1 attempts:1" >> "$root/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
echo faas > "$root/etc/hostname"
mkdir -p "$root/.faas"   # mount point for faas-agent
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/tmp/"* 2>/dev/null || true
# Translations, manuals and documentation are about 100 MB of the image that no example reads (the
# copyright files stay); dpkg leaves them out of packages installed later too, as Debian's slim images do.
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root/usr/share/man/"* "$root/usr/share/locale/"* "$root/usr/share/info/"*
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
  'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/info/*' \
  > "$root/etc/dpkg/dpkg.cfg.d/01-faas-slim"
touch "$root/.faas-image"
date -u +%FT%TZ > "$tmp/.complete"
mv "$tmp" "$dest"
trap - EXIT
echo "default image: built at $dest ($(du -sm "$dest/rootfs" | cut -f1) MB)"
