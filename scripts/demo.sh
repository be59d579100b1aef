#!/usr/bin/env bash
# The README's first command: installs what the build needs when it is missing
# (Debian: cmake and a C toolchain), builds the release binary, and starts the
# demo (gateway on 127.0.0.1:8080, sample app on 127.0.0.1:8081). Arguments go
# to `portcullis demo` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust first (https://rustup.rs)" >&2
  exit 1
fi
want_build
install_needed
cargo build --release --quiet
exec target/release/portcullis demo "$@"
