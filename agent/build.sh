#!/usr/bin/env bash
# Builds the static faas-agent binary.
#   OUT      output path (default: agent/bin/faas-agent)
#   VERSION  version string (default: first 12 hex chars of the sha256 of the
#            sources, or "dev" when sha256sum is unavailable)
set -euo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-bin/faas-agent}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [[ -z "${VERSION:-}" ]]; then
  if command -v sha256sum >/dev/null; then
    # Content hash of the sources: same tree, same version, whatever the checkout.
    VERSION="$(find . -path ./bin -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print \
      | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
  else
    VERSION=dev
  fi
fi
mkdir -p "$(dirname "$OUT")"
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$OUT" .
echo "built $OUT (version $VERSION)"
