-- wrk script: POST /v1/promotions/score with a rotating set of real Hillstrom-shaped customers.
-- usage: wrk -t2 -c32 -d10s -s bench/http/score.lua http://127.0.0.1:8080  (see bench/run_http)
--        ENDPOINT=triage bench/run_http ...   (POST /v1/triage instead, see below)
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
-- holds a fixed offered load instead of saturating; CONNECTIONS must match wrk's -c. The think
-- times are exponential (mean CONNECTIONS / RATE), so the connections' requests arrive like a
-- Poisson stream: a constant think time keeps every connection in step, and the server then sees
-- bursts of CONNECTIONS requests at once and nothing in between (a queue at any mean rate).
local rate = tonumber(os.getenv("RATE") or "")
local connections = tonumber(os.getenv("CONNECTIONS") or "1")
if rate and rate > 0 then
  local pause = connections * 1000 / rate
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003)
  delay = function() return -math.log(1 - math.random()) * pause end
end

-- ENDPOINT=triage: POST /v1/triage instead, with request texts covering every route (model
-- answers, phrase rules, and extract / itinerary / classify escalations, which are submitted to
-- the LLM layer but never awaited).
if os.getenv("ENDPOINT") == "triage" then
  wrk.path = "/v1/triage"
  local texts = {
    "my luggage never showed up after my flight", "I lost my credit card",
    "why was my card declined at the store", "I want to open a chargeback for this order",
    "book a flight to Lisbon from May 3 to May 7 for two adults",
    "I need a hotel in Rome for three nights", "rent a car in Denver next weekend",
    "what are fun things to do in Paris from June 3 to June 6",
    "how do I grow tomatoes on my balcony", "is my flight to denver on time",
    "what is my credit score", "how many vacation days do I have left",
    "set a timer for ten minutes", "what is the exchange rate between dollars and euros",
    "can you tell me a joke", "someone charged my card 4111 1111 1111 1111 twice",
  }
  bodies = {}
  for i = 1, #texts * 4 do
    bodies[i] = string.format('{"text":"%s","channel":"web","subject":{"id":"bench-%d"}}',
      texts[((i - 1) % #texts) + 1], i)
  end
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
