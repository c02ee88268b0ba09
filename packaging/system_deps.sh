#!/usr/bin/env bash
# Checks (and, as root on Debian/Ubuntu, installs) the system libraries Qt needs.
#   --gui  also the xcb libraries a real window needs; without them Qt aborts with
#          "could not load the Qt platform plugin xcb".
set -u
base=(libegl1 libgl1 libfontconfig1 libdbus-1-3 libxkbcommon0 libglib2.0-0)
gui=(libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
     libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1)
want=("${base[@]}")
[ "${1:-}" = "--gui" ] && want+=("${gui[@]}")
command -v dpkg-query >/dev/null 2>&1 || exit 0   # not Debian-like: nothing we can check
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system libraries Qt needs: ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    && exit 0
fi
echo "SegStudio needs these system packages, which are missing: ${missing[*]}" >&2
echo "Install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
