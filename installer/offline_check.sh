#!/usr/bin/env bash
# Offline guarantee: run a full headless consultation inside a fresh network namespace (no
# interfaces but a down loopback) under strace, and fail if it did not succeed or if any process
# attempted an IPv4/IPv6 connection or datagram (connect/sendto/sendmsg to AF_INET/AF_INET6).
#
# Usage: installer/offline_check.sh [EXECUTABLE]   (default .venv/bin/clarke-desktop; pass
#        /opt/clarke-desktop/clarke-desktop or dist/clarke-desktop/clarke-desktop to check a build)
# Needs: root (or unprivileged user namespaces) for `unshare -n`, and strace.
# Env:   CLARKE_OFFLINE_PATIENT (default pt-001), CLARKE_OFFLINE_AUDIO (a recording to transcribe
#        instead of the typed transcript; needs the MedASR pack), CLARKE_OFFLINE_MAX_SECTION_TOKENS
#        (default 40; 0 = uncapped), CLARKE_OFFLINE_KEEP=1 keeps the
#        scratch folder, CLARKE_CACHE_DIR to reuse an assembled embedded model between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
exe="${1:-.venv/bin/clarke-desktop}"
command -v strace >/dev/null || { echo "offline_check: strace is not installed (apt-get install strace)" >&2; exit 2; }
command -v unshare >/dev/null || { echo "offline_check: unshare (util-linux) is not installed" >&2; exit 2; }
if [ "$(id -u)" -eq 0 ]; then netns=(unshare --net); else netns=(unshare --map-root-user --net); fi
"${netns[@]}" true 2>/dev/null || { echo "offline_check: cannot create a network namespace here (${netns[*]})" >&2; exit 2; }

scratch="$(mktemp -d)"
[ "${CLARKE_OFFLINE_KEEP:-0}" = 1 ] || trap 'rm -rf "$scratch"' EXIT
export CLARKE_DATA_DIR="$scratch/data"
export CLARKE_CACHE_DIR="${CLARKE_CACHE_DIR:-$scratch/cache}"
export QT_QPA_PLATFORM=offscreen
# Any proxy setting would only be a route out; make sure none leaks in from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# A set-up installation: an administrator and the clinician who signs (headless sign-in).
if "$exe" users --help >/dev/null 2>&1; then
  printf 'offline admin passphrase\n' >"$scratch/admin.pw"
  printf 'offline check passphrase\n' >"$scratch/clinician.pw"
  "$exe" users add it.admin --role admin --display-name "IT Admin" <"$scratch/admin.pw" >/dev/null
  "$exe" users add offline --role clinician --display-name "Dr Offline Check" \
    --user it.admin --password-file "$scratch/admin.pw" <"$scratch/clinician.pw" >/dev/null
  export CLARKE_USER=offline CLARKE_PASSWORD_FILE="$scratch/clinician.pw"
fi

cat >"$scratch/transcript.txt" <<'TXT'
Doctor: Good morning. How have things been since we last met?
Patient: Much better. The breathlessness has settled and I have been taking the inhaler twice a day.
Doctor: Good. Your chest sounds clear today and your oxygen saturation is 97 percent on room air.
Doctor: We will continue the current treatment and review you again in three months.
TXT
if [ -n "${CLARKE_OFFLINE_AUDIO:-}" ]; then input=(--audio "$CLARKE_OFFLINE_AUDIO"); else input=(--transcript "$scratch/transcript.txt"); fi
# Every stage still runs (record, agent, letter, PDF, write-back); capping the letter's tokens per
# section only keeps a CPU run short. CLARKE_OFFLINE_MAX_SECTION_TOKENS=0 lifts the cap.
cap="${CLARKE_OFFLINE_MAX_SECTION_TOKENS:-40}"
if [ "$cap" != 0 ] && "$exe" run-consultation --help 2>/dev/null | grep -q -- "--max-section-tokens"; then
  input+=(--max-section-tokens "$cap")
fi

echo "offline_check: network inside the namespace:" >&2
"${netns[@]}" ip -brief link >&2 2>/dev/null || true
# --seccomp-bpf stops the program only on the traced calls (plain -f stops it on every syscall,
# which slows multi-threaded inference badly); older strace lacks it.
strace_opts=(-f -qq)
strace --seccomp-bpf -f -qq -e trace=connect -o /dev/null true 2>/dev/null && strace_opts+=(--seccomp-bpf)
start=$(date +%s)
set +e
"${netns[@]}" strace "${strace_opts[@]}" -o "$scratch/strace.log" -e trace=connect,sendto,sendmsg,sendmmsg \
  "$exe" run-consultation --patient "${CLARKE_OFFLINE_PATIENT:-pt-001}" "${input[@]}" \
  --sign-off "Dr Offline Check" --out "$scratch/out" --json --allow-empty-sections \
  >"$scratch/summary.json" 2>"$scratch/stderr.log"
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))

inet="$(grep -E 'sa_family=AF_INET6?[,}]' "$scratch/strace.log" || true)"
unix_count="$(grep -c 'sa_family=AF_UNIX' "$scratch/strace.log" || true)"
if [ "$rc" -ne 0 ]; then
  echo "offline_check: FAILED: the consultation exited $rc after ${elapsed}s" >&2
  tail -40 "$scratch/stderr.log" >&2
  exit 1
fi
python3 - "$scratch/summary.json" <<'PY'
import json, os, sys
summary = json.load(open(sys.argv[1]))
assert summary["signed_by"] == "Dr Offline Check", summary
assert os.path.getsize(summary["pdf"]) > 1000, summary["pdf"]
print(f"offline_check: consultation {summary['consultation_id']} signed; PDF {summary['pdf']}; "
      f"written back: {summary.get('document_reference') or 'no'}; model: {(summary.get('model') or {}).get('name')}",
      file=sys.stderr)
PY
if [ -n "$inet" ]; then
  echo "offline_check: FAILED: network connection attempts:" >&2
  echo "$inet" >&2
  exit 1
fi
echo "offline_check: PASSED in ${elapsed}s: no AF_INET/AF_INET6 connect/sendto/sendmsg (AF_UNIX calls: ${unix_count:-0})" >&2
