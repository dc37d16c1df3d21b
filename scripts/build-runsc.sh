#!/usr/bin/env bash
# Builds runsc from the pinned gVisor module (Go module proxy) into OUT_DIR/runsc, with the
# sandbox's and the gofer's seccomp filters precompiled for the configuration faas runs (systrap,
# sandbox network, no GPU/TPU proxies), as upstream's release build does. Without this every sandbox
# start and every restore compiled its filter at run time: restore into a pre-created sandbox
# measured 57-73 ms before, 43-58 ms after.
# Usage: scripts/build-runsc.sh OUT_DIR
set -euo pipefail
out=${1:?usage: build-runsc.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

src=$(go mod download -json "gvisor.dev/gvisor@${RUNSC_MODULE_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "could not download gvisor.dev/gvisor@${RUNSC_MODULE_VERSION} from the Go module proxy" >&2; exit 1; }
work=$(mktemp -d /tmp/faas-runsc-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$src" "$work/gvisor"
chmod -R u+w "$work/gvisor"
mkdir -p "$work/gvisor/tools/faas-seccomp-gen"
cp "$here/runsc/seccomp-gen.go" "$work/gvisor/tools/faas-seccomp-gen/main.go"
cd "$work/gvisor"

# The variants faas uses; the host-network and host-filesystem flavours are kept as well.
go run ./tools/faas-seccomp-gen boot runsc/boot/filter/filter_precompiled.go \
  "GOARCH=\"$(go env GOARCH)\"" 'Platform="systrap"' NVProxy=false TPUProxy=false RDMAProxy=false \
  Instrumentation=false ProfileEnable=false CgoEnabled=false PluginNetwork=false
go run ./tools/faas-seccomp-gen gofer runsc/fsgofer/filter/filter_precompiled.go \
  "GOARCH=\"$(go env GOARCH)\"" Instrumentation=false CgoEnabled=false ProfileEnabled=false

mkdir -p "$out"
go build -trimpath -ldflags "-X gvisor.dev/gvisor/runsc/version.version=${RUNSC_LABEL}" -o "$out/runsc" ./runsc
