#!/usr/bin/env bash
# Installs everything faas needs on a fresh Debian 12 machine (run as root), idempotently:
# Debian packages, runsc (built from the Go module proxy at a pinned version, cached outside the
# repo), faas-agent, npm and pip dependencies, and the default image. Re-running reuses caches.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.env
CACHE=${FAAS_CACHE_DIR:-/var/cache/faas}
export PATH=/usr/local/go/bin:$PATH
step() { printf '\n==> %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "faas install must run as root (gVisor checkpoint/restore and network namespaces need it)" >&2; exit 1; }

step "Debian packages"
need=()
# chromium: the dashboard's end-to-end tests drive it headless (engine/test/dashboard-browser.test.ts).
# jq: the README's shell examples read --json output and credentials.json with it.
for p in debootstrap iptables iproute2 build-essential python3 ca-certificates curl jq tar chromium; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "ok"

step "runsc ${RUNSC_MODULE_VERSION} build ${RUNSC_BUILD} (from the Go module proxy, cached in $CACHE)"
runsc_dir="$CACHE/runsc/$RUNSC_MODULE_VERSION-b$RUNSC_BUILD"
if [ ! -x "$runsc_dir/runsc" ]; then
  command -v go >/dev/null || { echo "Go is required to build runsc (go >= 1.26.3)" >&2; exit 1; }
  rm -rf "$runsc_dir.tmp"
  scripts/build-runsc.sh "$runsc_dir.tmp"
  rm -rf "$runsc_dir"; mv "$runsc_dir.tmp" "$runsc_dir"
fi
mkdir -p "$CACHE/bin"
ln -sfn "$runsc_dir/runsc" "$CACHE/bin/runsc"
# Not `| head -n1`: with pipefail, runsc dies of SIGPIPE when head exits before its second line.
"$CACHE/bin/runsc" --version | sed -n 1p

step "faas-agent"
agent/build.sh

step "npm dependencies and build"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --workspaces --if-present --silent
# The faas CLI, on PATH (it is part of the TypeScript SDK package).
ln -sfn "$PWD/sdk/typescript/dist/cli/main.js" /usr/local/bin/faas

if [ -f sdk/python/pyproject.toml ]; then
  step "Python SDK (editable, with test dependencies and schemathesis)"
  py=${PYTHON:-python3}
  "$py" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e "sdk/python[dev]"
fi

step "default image"
scripts/build-default-image.sh
latest=$(ls -d "$CACHE"/images/debian-bookworm-r* | sort -V | tail -n1)
ln -sfn "$latest" "$CACHE/images/default"
step "systemd unit (faas-engine.service)"
# Rendered from scripts/faas-engine.service; rewritten only when it changed, never enabled here:
# `systemctl enable --now faas-engine` is the operator's choice (docs/architecture.md).
unit=/etc/systemd/system/faas-engine.service
node_bin=$(command -v node)
mkdir -p "$(dirname "$unit")"
# The unit appends the engine's output to the state directory's engine.log: it must exist.
[ -d /var/lib/faas ] || install -d -m 0700 /var/lib/faas
sed -e "s|@REPO@|$PWD|g" -e "s|@NODE@|$node_bin|g" scripts/faas-engine.service > "$unit.tmp"
if cmp -s "$unit.tmp" "$unit"; then
  rm -f "$unit.tmp"; echo "unchanged: $unit"
else
  mv -f "$unit.tmp" "$unit"; echo "installed $unit"
  # Only where systemd runs (not in a container whose PID 1 is something else).
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
fi
if [ ! -f /etc/faas/engine.env ]; then
  mkdir -p /etc/faas
  printf '%s\n' '# faas engine settings for faas-engine.service, one VAR=value a line (see engine/src/config.ts).' \
    '#FAAS_PORT=7440' '#FAAS_SUBNET=10.200.0.0/16' '#FAAS_MAX_INSTANCES=64' > /etc/faas/engine.env
fi
echo "run the engine as a service: systemctl enable --now faas-engine"

echo "ready: runsc, faas-agent, engine, SDKs, default image"
