-- wrk script: POST wrong-password sign-ins (body and cookie come from the environment).
wrk.method = "POST"
wrk.body = os.getenv("FLOOD_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("FLOOD_COOKIE")
wrk.headers["Host"] = "bench.test"
done = function(summary, latency, requests)
  io.write(string.format("flood: %d sign-in attempts (%.0f/s), all refused (non-2xx: %d), p95 %.0f ms\n",
    summary.requests, summary.requests / (summary.duration / 1e6), summary.errors.status,
    latency:percentile(95) / 1000))
end
