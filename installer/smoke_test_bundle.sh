#!/usr/bin/env bash
# Prove a built Clarke Desktop runs: --version, doctor --json, models status, and the GUI starting
# (`gui --quit-after`: offscreen, and on a real X server via Xvfb when installed, which exercises
# the xcb platform plugin and its system libraries).
# Usage: installer/smoke_test_bundle.sh [EXECUTABLE]   (default dist/clarke-desktop/clarke-desktop)
# Uses a throwaway data/cache directory unless CLARKE_DATA_DIR is set. Exit 0 only if all pass.
set -euo pipefail
exe="${1:-dist/clarke-desktop/clarke-desktop}"
gui_ms="${CLARKE_SMOKE_GUI_MS:-4000}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export CLARKE_DATA_DIR="${CLARKE_DATA_DIR:-$scratch/data}" CLARKE_CACHE_DIR="${CLARKE_CACHE_DIR:-$scratch/cache}"

step() { echo "smoke: $*" >&2; }

step "version"
version="$("$exe" --version)"
echo "$version"
[[ "$version" == clarke-desktop,\ version\ * ]] || { echo "smoke: unexpected --version output" >&2; exit 1; }

step "doctor --json"
set +e
"$exe" doctor --json >"$scratch/doctor.json"
doctor_rc=$?
set -e
python3 - "$scratch/doctor.json" "$doctor_rc" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
ids = [c["id"] for c in report["checks"]]
assert {"gpu", "llama_cpp", "onnxruntime", "models", "audio", "fhir_db"} <= set(ids), ids
assert rc == (1 if report["status"] == "fail" else 0), (rc, report["status"])
llama = next(c for c in report["checks"] if c["id"] == "llama_cpp")
assert llama["status"] != "fail", llama  # the bundle's llama.cpp native libraries load
models = next(c for c in report["checks"] if c["id"] == "models")
assert models["data"]["embedded_default_present"], models  # the embedded GGUF parts are bundled
print("doctor:", report["status"], report["summary"])
PY

step "models status --json"
"$exe" models status --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert len(d['roles'])==3; print('models status ok')"

run_gui() {  # $1 = expected Qt platform; the rest = env prefix. The window must open, show and quit cleanly.
  local platform="$1"; shift
  local log="$scratch/gui-$platform.log"
  set +e
  timeout 120 "$@" "$exe" gui --quit-after "$gui_ms" >"$log" 2>&1
  local rc=$?
  set -e
  if [ "$rc" -ne 0 ] || ! grep -q "platform=$platform visible=True" "$log" \
     || grep -E "could not start|Could not load the Qt platform plugin|ModuleNotFoundError" "$log" >&2; then
    echo "smoke: GUI ($platform) failed (exit $rc):" >&2; cat "$log" >&2; return 1
  fi
  if grep -q "Traceback" "$log"; then  # reported, not fatal: the window started and quit cleanly
    echo "smoke: warning: GUI ($platform) logged a traceback:" >&2; grep -A12 "Traceback" "$log" | head -30 >&2
  fi
  step "GUI ($platform): $(grep "platform=$platform" "$log")"
}

step "GUI offscreen"
run_gui offscreen env QT_QPA_PLATFORM=offscreen
if command -v Xvfb >/dev/null; then
  step "GUI on Xvfb (xcb platform plugin)"
  display=99
  while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do display=$((display + 1)); done
  Xvfb ":$display" -screen 0 1366x860x24 -nolisten tcp >"$scratch/xvfb.log" 2>&1 &
  xvfb_pid=$!
  trap 'kill $xvfb_pid 2>/dev/null || true; rm -rf "$scratch"' EXIT
  for _ in $(seq 1 50); do [ -e "/tmp/.X11-unix/X$display" ] && break; sleep 0.2; done
  [ -e "/tmp/.X11-unix/X$display" ] || { echo "smoke: Xvfb did not start" >&2; cat "$scratch/xvfb.log" >&2; exit 1; }
  run_gui xcb env QT_QPA_PLATFORM=xcb DISPLAY=":$display"
fi
step "all passed"
