#!/usr/bin/env bash
# README command 1: install everything, then run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
printf '\n==> demo\n'
node scripts/demo.mjs
