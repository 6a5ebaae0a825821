#!/usr/bin/env bash
# Build the PyInstaller onedir bundle: dist/clarke-desktop/clarke-desktop (+ _internal/).
# Usage: installer/build_bundle.sh            (uses .venv; installs the pinned PyInstaller if missing)
# Env:   CLARKE_DIST_DIR (default dist), CLARKE_BUILD_DIR (default build/pyinstaller)
# The bundle contains no model weights except the embedded Gemma 3 270M demo default; IT installs
# MedGemma/MedASR with `clarke-desktop models install PACK` (see docs/it-guide.md).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
dist="${CLARKE_DIST_DIR:-dist}"
work="${CLARKE_BUILD_DIR:-build/pyinstaller}"
pyinstaller_version="$(sed -n 's/.*"pyinstaller==\([^"]*\)".*/\1/p' pyproject.toml)"
if ! "$py" -c "import PyInstaller" 2>/dev/null; then
  echo "build_bundle: installing pyinstaller==$pyinstaller_version" >&2
  "$py" -m pip install -q "pyinstaller==$pyinstaller_version" >&2
fi
"$py" -c "import llama_cpp" || { echo "build_bundle: llama-cpp-python is not importable in .venv" >&2; exit 1; }
start=$(date +%s)
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$dist" --workpath "$work" installer/clarke-desktop.spec
end=$(date +%s)
bundle="$dist/clarke-desktop"
size_mb=$(du -sm "$bundle" | cut -f1)
echo "build_bundle: $bundle built in $((end - start)) s, ${size_mb} MB" >&2
