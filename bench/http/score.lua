-- wrk script: POST /v1/promotions/score with a rotating set of real Hillstrom-shaped customers.
-- usage: wrk -t2 -c32 -d10s -s bench/http/score.lua http://127.0.0.1:8080  (see bench/run_http)
wrk.method = "POST"
wrk.path = "/v1/promotions/score"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-score"

local zips = {"Urban", "Surburban", "Rural"}
local channels = {"Phone", "Web", "Multichannel"}
local bodies = {}
for i = 1, 256 do
  bodies[i] = string.format(
    '{"subject":{"id":"bench-%d","recency":%d,"history":%.2f,"mens":%s,"womens":%s,' ..
    '"zip_code":"%s","newbie":%s,"channel":"%s","marketing_opt_out":%s,' ..
    '"emails_last_30d":%d,"country":"US"}}',
    i, (i % 12) + 1, 30 + (i * 37) % 900, tostring(i % 2 == 0), tostring(i % 3 ~= 0),
    zips[(i % 3) + 1], tostring(i % 4 == 0), channels[(i % 3) + 1], tostring(i % 29 == 0),
    i % 5)
end

-- RATE=N (requests/s over all connections) paces each connection with a think time, so the run
-- holds a fixed offered load instead of saturating; CONNECTIONS must match wrk's -c.
local rate = tonumber(os.getenv("RATE") or "")
local connections = tonumber(os.getenv("CONNECTIONS") or "1")
if rate and rate > 0 then
  local pause = connections * 1000 / rate
  delay = function() return pause end
end

local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("requests %d, errors (non-2xx or socket) %d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
  io.write(string.format("decisions/s %.0f\n", summary.requests / (summary.duration / 1e6)))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%g %.3f ms\n", p, latency:percentile(p) / 1000))
  end
end
