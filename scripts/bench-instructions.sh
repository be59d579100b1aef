#!/usr/bin/env bash
# Instructions per signed-in request (issue #11), counted by callgrind: the same
# request through the bare Pingora proxy (examples/bare_proxy: same upstream
# timeouts, same session cookie, forwarded as it is) and through Portcullis with the
# memory store and with the Redis store. Unlike CPU time, the count doesn't move
# with what else the machine is doing, so it is the figure to compare changes with
# on a shared or virtual machine (BENCHMARKS.md). User-space instructions of the
# worker thread only: the kernel's share (the same for both, loopback TCP) isn't
# counted.
# Usage: scripts/bench-instructions.sh [requests, default 2000]   (EXTRA_HEADER=1: see the client below)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
export PORTCULLIS_LOG=off
. scripts/deps.sh
want_build
want_cmd valgrind valgrind
want_cmd callgrind_annotate valgrind
want_cmd nginx nginx-light
want_cmd redis-server redis-server
want_cmd curl curl
want_cmd python3 python3
install_needed
cargo build --release --quiet --bins --example bare_proxy
BIN=target/release/portcullis
W=$(mktemp -d); PIDS=()
. scripts/bench-lib.sh
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UP=$(port); RP=$(port); BP=$(port); PM=$(port); PR=$(port)
mkdir -p "$W/up"
cat > "$W/up/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $W/up/pid; error_log $W/up/err.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$UP; location / { return 200 "ok"; } } }
NGX
nginx -p "$W/up" -c "$W/up/nginx.conf" & PIDS+=($!)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >/dev/null & PIDS+=($!)
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$RP) 2>/dev/null && break; sleep 0.1; done

# Keep-alive client: N requests over 4 connections, all must be 200. The request is
# the one scripts/bench.sh measures CPU time on: wrk's, `Host` and `Cookie` and
# nothing else (http.client would add `Accept-Encoding: identity`; `EXTRA_HEADER=1`
# sends it too, as this script did up to the eleventh pass).
cat > "$W/client.py" <<'PY'
import http.client, os, sys
port, n, cookie = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
extra = os.environ.get("EXTRA_HEADER") == "1"
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in range(4)]
for i in range(n):
    c = conns[i % 4]
    c.putrequest("GET", "/", skip_host=True, skip_accept_encoding=not extra)
    c.putheader("Host", "bench.test")
    c.putheader("Cookie", cookie)
    c.endheaders()
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"request {i}: {r.status}")
PY
config() { # $1 dir, $2 port, $3 store section
  mkdir -p "$1"
  printf '[server]\nlisten = "127.0.0.1:%s"\nthreads = 1\n[session]\nsecure = false\n%s\n[[site]]\nhost = "bench.test"\nupstream = "127.0.0.1:%s"\n' "$2" "$3" "$UP" > "$1/portcullis.toml"
  $BIN init "$1" >/dev/null
  echo "violet tundra lantern 42" | $BIN user add --config "$1/portcullis.toml" bench --email bench@example.com --password-stdin >/dev/null
}
signin() { # $1 port -> prints the session cookie
  local jar csrf; jar=$(mktemp -p "$W")
  csrf=$(curl -s -c "$jar" -H 'Host: bench.test' "http://127.0.0.1:$1/_auth/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
  curl -s -o /dev/null -b "$jar" -c "$jar" -H 'Host: bench.test' "http://127.0.0.1:$1/_auth/login" \
    --data-urlencode "csrf=$csrf" --data-urlencode identifier=bench --data-urlencode "password=violet tundra lantern 42"
  echo "portcullis=$(awk '$6=="portcullis"{print $7}' "$jar")"
}
# count NAME PORT COOKIE CMD... -> instructions per request of the busiest thread
count() {
  local name=$1 p=$2 cookie=$3 vp f best=0 ir; shift 3
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$W/cg.$name.%p" "$@" >"$W/$name.log" 2>&1 & vp=$!; PIDS+=($vp)
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$p/_auth/health" -H 'Host: bench.test' && break; sleep 0.2; done
  [ "$cookie" = signin ] && cookie=$(signin "$p")
  python3 "$W/client.py" "$p" 300 "$cookie"      # warm-up
  callgrind_control -z "$vp" >/dev/null
  python3 "$W/client.py" "$p" "$N" "$cookie"
  callgrind_control -d "$vp" >/dev/null
  # (The dump is taken: no graceful shutdown to wait for.)
  kill -9 "$vp"; wait "$vp" 2>/dev/null || true
  for f in "$W"/cg."$name".*.1-*; do
    ir=$(awk '/^summary:/{print $2}' "$f")
    [ "${ir:-0}" -gt "$best" ] && best=$ir
  done
  echo $((best / N))
}
config "$W/mem" "$PM" '[store]
backend = "memory"'
config "$W/redis" "$PR" "[store]
backend = \"redis\"
redis_url = \"redis://127.0.0.1:$RP/0\""
# A Redis session made by a normal run of the gateway: signing in under callgrind is slow.
$BIN serve --config "$W/redis/portcullis.toml" & G=$!; PIDS+=($G)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PR/_auth/health" -H 'Host: bench.test' && break; sleep 0.1; done
CR=$(signin "$PR"); kill -9 $G; wait $G 2>/dev/null || true

echo "callgrind, $N keep-alive requests (after 300 to warm up), instructions per request:"
bare=$(count bare "$BP" "$CR" target/release/examples/bare_proxy "127.0.0.1:$BP" "127.0.0.1:$UP")
floor=$(BARE_HEADERS=1 count floor "$BP" "$CR" target/release/examples/bare_proxy "127.0.0.1:$BP" "127.0.0.1:$UP")
mem=$(count memory "$PM" signin $BIN serve --config "$W/mem/portcullis.toml")
red=$(count redis "$PR" "$CR" $BIN serve --config "$W/redis/portcullis.toml")
python3 - "$bare" "$floor" "$mem" "$red" <<'PY'
import sys
b, f, m, r = map(int, sys.argv[1:])
print("| path | instructions per request | vs bare Pingora |")
print("| --- | ---: | ---: |")
for name, v in (("bare Pingora proxy (same request, same upstream timeouts)", b),
                ("bare Pingora + the gateway's seven headers and cookie removal, no authentication (BARE_HEADERS=1)", f),
                ("Portcullis, memory store, signed in", m), ("Portcullis, Redis store, signed in", r)):
    print(f"| {name} | {v:,} | {v / b:.3f} |".replace(f"{v:,}", f"{v:,}".replace(",", " ")))
PY
