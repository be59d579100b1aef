#!/usr/bin/env bash
# The project's test command: installs what the tests need (Debian), then runs
# formatting and lint checks and every test target (unit, integration with a
# real redis-server, PostgreSQL, nginx, Caddy, SMTP server (aiosmtpd), WebSocket server (python3-websockets) and headless Chromium, benches in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/deps.sh
want_build
want_cmd redis-server redis-server
want_file /usr/sbin/nginx nginx-light                # forward-auth test
want_cmd caddy caddy                                 # forward-auth test (README's Caddyfile)
want_cmd openssl openssl                             # test TLS certificates
want_file /usr/bin/curl curl                         # HTTP/2 client for the TLS tests
want_cmd systemd-analyze systemd                     # checks docs/portcullis.service
want_py aiosmtpd python3-aiosmtpd                    # real SMTP server for email codes
want_py websockets python3-websockets                # real WebSocket server behind the gateway
want_py jwt python3-jwt                              # independent verifier of identity assertions (PyJWT)
want_py cryptography python3-cryptography            # ES256 for PyJWT
want_file /usr/bin/chromium chromium                 # browser tests
want_file /usr/bin/chromedriver chromium-driver
# PostgreSQL server programs (initdb, pg_ctl) for the shared-accounts tests; Debian
# keeps them under /usr/lib/postgresql/VERSION/bin.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
want_cmd npm npm                                     # fetches axe-core for the accessibility checks
install_needed
# axe-core (accessibility rules) from the npm registry, run in Chromium by the browser tests.
AXE_VERSION=4.14.1
if ! grep -qs "\"version\": \"$AXE_VERSION\"" target/axe/node_modules/axe-core/package.json; then
  npm install --no-audit --no-fund --silent --prefix target/axe "axe-core@$AXE_VERSION"
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
