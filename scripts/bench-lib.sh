# Shared by the bench scripts (sourced after `W=$(mktemp -d); PIDS=()`): stops what a
# script started when it exits. TERM first (nginx stops its workers); a Pingora server
# still draining after two seconds (its graceful shutdown waits a minute) is killed.
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 20); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait "${PIDS[@]}" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
