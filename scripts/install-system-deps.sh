#!/usr/bin/env bash
# Installs the Debian/Ubuntu libraries Qt needs, only when some are missing.
#   offscreen Qt (tests):   libglib2.0-0 libgl1 libegl1 libxkbcommon0 libfreetype6 libfontconfig1 libdbus-1-3
#                           fontconfig-config fonts-dejavu-core   (no fonts = Qt silently draws empty boxes)
#   a real window / Xvfb:   xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
# Qt's "xcb-cursor0 is needed" message can be misleading: QT_DEBUG_PLUGINS=1 shows the library really missing.
#
# `install-system-deps.sh keychain` installs instead what the real-keychain tests need (make test-keychain, CI):
#   a private D-Bus session and an unlocked GNOME Keyring:  dbus gnome-keyring libsecret-tools
# `install-system-deps.sh team` installs the PostgreSQL server for the team-mode tests (make test-team, CI):
#   postgresql  (Debian's server; scripts/pg-cluster.sh runs a throwaway cluster of it, never the system's)
# `install-system-deps.sh package` adds x11-utils (xwininfo) to the Qt list (make package, make package-test).
set -euo pipefail

if [ "${1:-qt}" = "keychain" ]; then
  packages=(dbus gnome-keyring libsecret-tools)
elif [ "${1:-qt}" = "team" ]; then
  packages=(postgresql)
else
  packages=(
    libglib2.0-0 libgl1 libegl1 libxkbcommon0 libfreetype6 libfontconfig1 libdbus-1-3 fontconfig-config
    fonts-dejavu-core
    xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
  )
  if [ "${1:-qt}" = "package" ]; then
    packages+=(x11-utils)  # make package / package-test: xwininfo reads the window's state from the X server
  fi
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-deps: not a Debian-like system; install ${packages[*]} (or their equivalents) yourself." >&2
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "system-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo_cmd=()
elif command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
else
  echo "system-deps: missing ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
