#!/usr/bin/env bash
# Set everything up (idempotent) and open Clarke Desktop on its embedded defaults.
# The bundled clinic database is created on first start from resources/ (no network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh app
exec .venv/bin/clarke-desktop "$@"
