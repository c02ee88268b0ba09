#!/usr/bin/env bash
# Checks (and, as root on Debian/Ubuntu, installs) the system libraries Qt needs.
#   --gui  also the xcb libraries a real window needs; without them Qt aborts with
#          "could not load the Qt platform plugin xcb".
#   --test also the PostgreSQL server the team tests start (Debian package `postgresql`).
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
# The team tests start a throwaway PostgreSQL server (initdb, pg_ctl): any installed major version
# will do; when none is, install the distribution's default (`postgresql`, 15 on Debian 12) as root,
# else say so: those tests then skip with that reason, the rest of the suite still runs.
if [ "${1:-}" = "--test" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing the PostgreSQL server for the team tests (Debian package postgresql)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || echo "could not install postgresql; the team tests will be skipped" >&2
  else
    echo "note: no PostgreSQL server binaries; the team tests will be skipped (sudo apt-get install postgresql)" >&2
  fi
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages SegStudio needs: ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    && exit 0
fi
echo "SegStudio needs these system packages, which are missing: ${missing[*]}" >&2
echo "Install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
