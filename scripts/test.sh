#!/usr/bin/env bash
# The project's test command: installs what the tests need (Debian), then runs
# formatting and lint checks and every test target (unit, integration with a
# real redis-server, nginx, SMTP server (aiosmtpd), WebSocket server (python3-websockets) and headless Chromium, benches in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx-light)  # forward-auth test
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v openssl >/dev/null 2>&1 || need+=(openssl)                               # test TLS certificates
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)  # real SMTP server for email codes
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || need+=(python3-websockets)  # real WebSocket server behind the gateway
[ -x /usr/bin/chromium ] || need+=(chromium)                                        # browser tests
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if ((${#need[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, e.g. with apt-get)" >&2
    exit 1
  fi
fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy rustfmt; fi

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END{print s+0}')
failed=$(grep -Eo '; [0-9]+ failed' "$log" | awk '{s+=$2} END{print s+0}')
echo
echo "total: ${passed} passed, ${failed} failed"
exit "$status"
