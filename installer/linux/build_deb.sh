#!/usr/bin/env bash
# Build the per-machine Debian/Ubuntu package from the PyInstaller bundle.
# Usage: installer/linux/build_deb.sh [BUNDLE_DIR]   (default dist/clarke-desktop; build it first with
#        installer/build_bundle.sh). Output: dist/clarke-desktop_<version>_<arch>.deb
# Env:   CLARKE_DEB_COMPRESSION=zstd|xz|gzip (default zstd: fast; use xz for dpkg older than 1.21.18)
# Layout: /opt/clarke-desktop (the bundle), /usr/bin/clarke-desktop, desktop entry and icon.
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle="${1:-dist/clarke-desktop}"
[ -x "$bundle/clarke-desktop" ] || { echo "build_deb: no bundle at $bundle (run installer/build_bundle.sh)" >&2; exit 1; }
version="$("$bundle/clarke-desktop" --version | sed 's/.*version //')"
arch="$(dpkg --print-architecture)"
# The bundle's native code needs at least the glibc it was built against.
glibc="$(ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$')"
root="${CLARKE_DEB_BUILD_DIR:-build/deb}/clarke-desktop_${version}_${arch}"
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
  "$root/usr/share/icons/hicolor/scalable/apps" "$root/usr/share/doc/clarke-desktop"
cp -a "$bundle" "$root/opt/clarke-desktop"
ln -s /opt/clarke-desktop/clarke-desktop "$root/usr/bin/clarke-desktop"
install -m 0644 installer/linux/clarke-desktop.desktop "$root/usr/share/applications/clarke-desktop.desktop"
install -m 0644 installer/linux/clarke-desktop.svg "$root/usr/share/icons/hicolor/scalable/apps/clarke-desktop.svg"
install -m 0644 installer/linux/copyright "$root/usr/share/doc/clarke-desktop/copyright"
[ -f docs/it-guide.md ] && install -m 0644 docs/it-guide.md "$root/usr/share/doc/clarke-desktop/it-guide.md"
for script in postinst postrm; do install -m 0755 "installer/linux/$script" "$root/DEBIAN/$script"; done
find "$root/opt" -type d -exec chmod 0755 {} +
find "$root/opt" -type f -exec chmod go+r,go-w {} +
installed_size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  -e "s/@GLIBC@/$glibc/" installer/linux/control.in >"$root/DEBIAN/control"
out="${CLARKE_DEB_OUT_DIR:-dist}/clarke-desktop_${version}_${arch}.deb"
mkdir -p "$(dirname "$out")"
start=$(date +%s)
dpkg-deb --root-owner-group -Z"${CLARKE_DEB_COMPRESSION:-zstd}" --build "$root" "$out" >&2
echo "build_deb: $out ($(du -m "$out" | cut -f1) MB, installed $((installed_size / 1024)) MB) in $(( $(date +%s) - start )) s" >&2
echo "$out"
