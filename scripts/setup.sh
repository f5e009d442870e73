#!/usr/bin/env bash
# Installs what cskh and its test suite need on a fresh machine of this project's kind
# (Debian, Rust toolchain, Python with pip): builds the binary and installs the
# embedding model. Idempotent. `--release` builds the optimized binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."

profile_flag=()
bin=target/debug/cskh
if [[ "${1:-}" == "--release" ]]; then
  profile_flag=(--release)
  bin=target/release/cskh
fi

echo "== building cskh ${profile_flag[*]:-(debug)}"
cargo build --bins "${profile_flag[@]}"

echo "== installing the embedding model"
"$bin" model fetch
