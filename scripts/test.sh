#!/usr/bin/env bash
# README command 2: install everything, then run every test suite against real gVisor sandboxes.
# Each suite runs even if an earlier one failed; the exit code says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh || exit 1
# A test run that was killed cannot clean up after itself; start from a clean slate.
scripts/clean-test-leftovers.sh
export PATH=/usr/local/go/bin:$PATH
failed=()
suite() {
  local name=$1; shift
  printf '\n==> %s\n' "$name"
  local t0=$SECONDS
  if "$@"; then echo "--- $name: ok ($((SECONDS - t0)) s)"; else echo "--- $name: FAILED ($((SECONDS - t0)) s)"; failed+=("$name"); fi
}
suite "contract (spec/openapi.yaml)" node spec/check.mjs
suite "faas-agent (go test)" bash -c 'cd agent && go test ./...'
suite "engine (real runsc)" npm test --silent -w engine
[ -f sdk/typescript/package.json ] && suite "TypeScript SDK, CLI and conformance" npm test --silent -w sdk/typescript
[ -d sdk/python/tests ] && suite "Python SDK and conformance" bash -c 'cd sdk/python && python3 -m pytest -q tests'
[ -f sdk/typescript/package.json ] && suite "SDK parity (public methods of both SDKs)" node scripts/check-sdk-parity.mjs
[ -f sdk/python/pyproject.toml ] && suite "Python SDK types (mypy --strict)" bash -c 'cd sdk/python && python3 -m mypy --strict faas_sdk'
# schemathesis (--checks all, stateful phase on) against a real engine, with and without the key.
suite "API fuzzing (schemathesis)" python3 tests/schemathesis/run.py
printf '\n'
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all suites passed"
