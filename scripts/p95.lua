-- wrk script: print requests/s and the 95th-percentile latency in milliseconds.
done = function(summary, latency, requests)
  io.write(string.format("rps=%.0f p95_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
