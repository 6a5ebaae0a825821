#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: Debian packages, a virtual environment and the
# pinned Python dependencies. Re-running it when nothing changed takes a second or two.
#   scripts/setup.sh app   -> what the app needs
#   scripts/setup.sh test  -> plus test, lint and MedASR-export tools (torch CPU, transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-app}"

# Qt's xcb plugin, PortAudio, libsndfile, fonts; espeak-ng/sox/xvfb/poppler for tests and screenshots.
apt_packages=(libportaudio2 libsndfile1 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0
  libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core)
if [ "$profile" = test ]; then
  apt_packages+=(xvfb xauth espeak-ng sox libsox-fmt-all poppler-utils iproute2 tmux strace)
fi
missing=()
for p in "${apt_packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $python_bin" >&2
  "$python_bin" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >&2
fi

extras=""
[ "$profile" = test ] && extras="[dev,export]"
mkdir -p .stamps
stamp=".stamps/pip-$profile"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python dependencies ($profile); the first time builds llama-cpp-python (~10 min)" >&2
  .venv/bin/python -m pip install -q -e ".$extras" >&2
  echo "$want" >"$stamp"
fi
