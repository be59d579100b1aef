-- wrk script: POST wrong-password sign-ins (body and cookie come from the environment).
wrk.method = "POST"
wrk.body = os.getenv("FLOOD_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("FLOOD_COOKIE")
wrk.headers["Host"] = "bench.test"
local codes = {}
response = function(status) codes[status] = (codes[status] or 0) + 1 end
done = function(summary, latency, requests)
  io.write("flood:")
  for k, v in pairs(codes) do io.write(string.format(" %d=%d", k, v)) end
  io.write("\n")
end
