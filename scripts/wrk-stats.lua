-- wrk script: one line of results for scripts/bench.sh (latencies in milliseconds;
-- errors include non-2xx/3xx answers, so a benchmark that lost its sign-in shows up).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("rps=%.0f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests,
    e.status + e.connect + e.timeout + e.read + e.write))
end
