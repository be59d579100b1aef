#!/usr/bin/env bash
# Signed-in proxied throughput and p95 latency through Portcullis (memory store),
# alone and while 16 clients flood the sign-in form with wrong passwords (rate
# limits and the ladder raised so that every attempt costs an argon2 hash: this
# measures the work limit, `password.max_concurrent_hashes`, not the 429s).
# Whole machine, no pinning: gateway (2 workers), upstream, wrk.
# Usage: scripts/bench-flood.sh [seconds, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
. scripts/deps.sh
want_build
want_cmd nginx nginx-light
want_cmd wrk wrk
want_cmd curl curl
install_needed
cargo build --release --quiet --bins
BIN=target/release/portcullis
W=$(mktemp -d); PIDS=()
. scripts/bench-lib.sh
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UP=$(port); PC=$(port)
cat > "$W/up.conf" <<NGX
worker_processes 1; daemon off; pid $W/up.pid; error_log $W/up.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UP; location / { return 200 "ok"; } } }
NGX
nginx -p "$W" -c "$W/up.conf" & PIDS+=($!)
cat > "$W/portcullis.toml" <<CFG
[server]
listen = "127.0.0.1:$PC"
threads = 2
[session]
secure = false
[password]
max_concurrent_hashes = 2
[defense]
ip_per_minute = 1000000
captcha_after = 1000000
lock_after = 1000000
spray_per_minute = 0
[[site]]
host = "bench.test"
upstream = "127.0.0.1:$UP"
CFG
$BIN init "$W" >/dev/null
echo "violet tundra lantern 42" | $BIN user add --config "$W/portcullis.toml" bench --email bench@example.com --password-stdin >/dev/null
PORTCULLIS_LOG=off $BIN serve --config "$W/portcullis.toml" & PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PC/_auth/health" -H 'Host: bench.test' && break; sleep 0.1; done
jar="$W/jar"
csrf=$(curl -s -c "$jar" -H 'Host: bench.test' "http://127.0.0.1:$PC/_auth/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
curl -s -o /dev/null -b "$jar" -c "$jar" -H 'Host: bench.test' "http://127.0.0.1:$PC/_auth/login" \
  --data-urlencode "csrf=$csrf" --data-urlencode identifier=bench --data-urlencode "password=violet tundra lantern 42"
COOKIE="portcullis=$(awk '$6=="portcullis"{print $7}' "$jar")"
PRE="portcullis_pre=$(awk '$6=="portcullis_pre"{print $7}' "$jar")"
export FLOOD_COOKIE="$PRE" FLOOD_BODY="csrf=$csrf&identifier=bench&password=wrong-password"

measure() { wrk -t1 -c16 -d"${DUR}s" -H 'Host: bench.test' -H "Cookie: $COOKIE" -s scripts/p95.lua "http://127.0.0.1:$PC/" | grep rps=; }
wrk -t1 -c16 -d2s -H 'Host: bench.test' -H "Cookie: $COOKIE" "http://127.0.0.1:$PC/" >/dev/null
echo "signed-in, no flood:   $(measure)"
wrk -t1 -c16 -d"$((DUR + 4))s" -s scripts/flood.lua "http://127.0.0.1:$PC/_auth/login" > "$W/flood.out" & FL=$!
sleep 2
echo "signed-in, with flood: $(measure)"
wait $FL || true
grep flood: "$W/flood.out"
