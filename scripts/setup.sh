#!/usr/bin/env bash
# Installs what cskh needs on a fresh machine of this project's kind (Debian, Rust,
# Python with pip, Node.js): builds the binary and installs the embedding model.
#   --release  build the optimized binary (for running the service)
#   --tests    also install what the test suite drives: Debian's chromium and
#              playwright-core from npm (no browser download)
# Idempotent: anything already in place is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

release=0
tests=0
for arg in "$@"; do
  case "$arg" in
    --release) release=1 ;;
    --tests) tests=1 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

if [[ $tests == 1 ]]; then
  if [[ ! -x /usr/bin/chromium ]]; then
    echo "== installing chromium (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chromium
  fi
  echo "== installing playwright-core (npm)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

if [[ $release == 1 ]]; then
  echo "== building cskh (release)"
  cargo build --release --bins
  bin="${CARGO_TARGET_DIR:-target}/release/cskh"
else
  echo "== building cskh (debug)"
  cargo build --bins
  bin="${CARGO_TARGET_DIR:-target}/debug/cskh"
fi

echo "== installing the embedding model"
"$bin" model fetch
