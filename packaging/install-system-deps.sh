#!/usr/bin/env bash
# Installs the Debian/Ubuntu libraries ReconStudio needs when they are missing:
# Qt's XCB platform plugin, OpenGL/EGL for VTK, Xvfb for headless GUI tests, libusb for open3d.
# Idempotent and quiet when everything is present; needs root (or sudo) only when something is missing.
set -euo pipefail

PKGS=(
  xvfb xauth libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xkb1 libxcb-xinerama0
  libusb-1.0-0
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: not a Debian-like system; install the equivalents of: ${PKGS[*]}" >&2
  exit 0
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-deps: missing ${missing[*]}; run this script as root" >&2
    exit 1
  fi
fi
echo "install-system-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
