#!/usr/bin/env bash
# Proxied requests per second through Portcullis (memory and Redis store, with
# a signed-in session) versus nginx as a plain reverse proxy, both in front of
# the same upstream (an nginx that answers 200 "ok"), on loopback.
# The proxy under test runs on core 0 with one worker; wrk and the upstream on core 1.
# Each configuration is measured ROUNDS times, interleaved, and the median is reported
# (this machine is a VM whose speed drifts between runs).
# Then runs scripts/bench-flood.sh (signed-in p95 with and without a sign-in flood).
# Usage: scripts/bench.sh [seconds per run, default 10] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
ROUNDS=${2:-3}
need=()
for c in nginx wrk redis-server taskset curl; do command -v $c >/dev/null 2>&1 || need+=($c); done
if ((${#need[@]})); then
  pkgs=$(printf '%s\n' "${need[@]}" | sed 's/^nginx$/nginx-light/;s/^taskset$/util-linux/')
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
fi
cargo build --release --quiet --bins --example bare_proxy
BIN=target/release/portcullis
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UP=$(port); NG=$(port); RP=$(port); BP=$(port)

mkdir -p "$W/up" "$W/ng"
cat > "$W/up/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $W/up/pid; error_log $W/up/err.log;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UP; location / { return 200 "ok"; } } }
NGX
cat > "$W/ng/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $W/ng/pid; error_log $W/ng/err.log;
events { worker_connections 4096; }
http { access_log off;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NG; location / { proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$remote_addr; } } }
NGX
taskset -c 1 nginx -p "$W/up" -c "$W/up/nginx.conf" & PIDS+=($!)
taskset -c 0 nginx -p "$W/ng" -c "$W/ng/nginx.conf" & PIDS+=($!)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >/dev/null & PIDS+=($!)

gateway() { # $1 = store section, $2 = dir, $3 = port; sets COOKIE
  local d=$2 PC=$3; mkdir -p "$d"
  cat > "$d/portcullis.toml" <<CFG
[server]
listen = "127.0.0.1:$PC"
threads = 1
[session]
secure = false
$1
[[site]]
host = "bench.test"
upstream = "127.0.0.1:$UP"
CFG
  $BIN init "$d" >/dev/null
  echo "benchmark password" | $BIN user add --config "$d/portcullis.toml" bench --email bench@example.com --password-stdin >/dev/null
  PORTCULLIS_LOG=off taskset -c 0 $BIN serve --config "$d/portcullis.toml" & GW=$!; PIDS+=($GW)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PC/_auth/health" -H 'Host: bench.test' && break; sleep 0.1; done
  local jar="$d/jar" csrf
  csrf=$(curl -s -c "$jar" -H 'Host: bench.test' "http://127.0.0.1:$PC/_auth/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
  curl -s -o /dev/null -b "$jar" -c "$jar" -H 'Host: bench.test' "http://127.0.0.1:$PC/_auth/login" \
    --data-urlencode "csrf=$csrf" --data-urlencode identifier=bench --data-urlencode "password=benchmark password"
  COOKIE="portcullis=$(awk '$6=="portcullis"{print $7}' "$jar")"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: bench.test' -H "Cookie: $COOKIE" "http://127.0.0.1:$PC/")" = 200 ] || { echo "sign-in for the benchmark failed"; exit 1; }
}
rps() { # $1 = port, extra wrk args...
  local p=$1; shift
  taskset -c 1 wrk -t1 -c32 -d"${DUR}s" -H 'Host: bench.test' "$@" "http://127.0.0.1:$p/" | awk '/Requests\/sec/{print int($2)}'
}
sleep 0.5
taskset -c 0 target/release/examples/bare_proxy "127.0.0.1:$BP" "127.0.0.1:$UP" 2>/dev/null & PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$BP/" && break; sleep 0.1; done
PM=$(port); PR=$(port)
gateway '[store]
backend = "memory"' "$W/mem" "$PM"; CM=$COOKIE
gateway "[store]
backend = \"redis\"
redis_url = \"redis://127.0.0.1:$RP/0\"" "$W/redis" "$PR"; CR=$COOKIE

# warm-up, then interleaved rounds
rps "$NG" -d2s >/dev/null; rps "$BP" -d2s >/dev/null
rps "$PM" -H "Cookie: $CM" -d2s >/dev/null; rps "$PR" -H "Cookie: $CR" -d2s >/dev/null
N=(); B=(); M=(); R=()
for i in $(seq "$ROUNDS"); do
  N+=($(rps "$NG")); B+=($(rps "$BP")); M+=($(rps "$PM" -H "Cookie: $CM")); R+=($(rps "$PR" -H "Cookie: $CR"))
  echo "round $i: nginx ${N[-1]}, bare ${B[-1]}, memory ${M[-1]}, redis ${R[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
NGINX=$(median "${N[@]}"); BARE=$(median "${B[@]}"); MEM=$(median "${M[@]}"); RED=$(median "${R[@]}")

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo "medians over $ROUNDS rounds of ${DUR}s, wrk -t1 -c32, proxy pinned to core 0 with one worker:"
echo "nginx plain proxy:              $NGINX req/s"
echo "bare Pingora proxy (no auth):   $BARE req/s  ($(ratio "$BARE" "$NGINX")x nginx)"
echo "portcullis, memory store:       $MEM req/s  ($(ratio "$MEM" "$NGINX")x nginx, $(ratio "$MEM" "$BARE")x bare Pingora)"
echo "portcullis, redis store:        $RED req/s  ($(ratio "$RED" "$NGINX")x nginx, $(ratio "$RED" "$BARE")x bare Pingora)"

echo
echo "signed-in latency with and without a sign-in flood (scripts/bench-flood.sh):"
bash scripts/bench-flood.sh "$DUR"
