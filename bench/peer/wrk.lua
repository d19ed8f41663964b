-- wrk script for bench/peer/run.sh.
--
-- Environment:
--   WRK_METHOD   GET or POST (default GET)
--   WRK_BODY     request body (sent with Content-Type: application/json)
--   WRK_API_KEY  sent as X-API-Key when set
--   WRK_EXPECT   a plain substring every 2xx answer must contain (checked when set)
--   WRK_LABEL    a name for the result line
--
-- At the end it prints one line `RESULT {json}` with requests, req/s, latency percentiles (ms),
-- non-2xx answers, socket errors and the number of 2xx answers missing WRK_EXPECT.

wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local key = os.getenv("WRK_API_KEY")
if key and key ~= "" then
  wrk.headers["X-API-Key"] = key
end
local expect = os.getenv("WRK_EXPECT")
if expect == "" then expect = nil end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread counters (each thread has its own Lua state).
bad = 0
checked = 0

function response(status, headers, resp_body)
  if status >= 200 and status < 300 and expect then
    checked = checked + 1
    if not string.find(resp_body, expect, 1, true) then
      bad = bad + 1
      if bad == 1 then
        io.stderr:write("unexpected answer: " .. string.sub(resp_body, 1, 400) .. "\n")
      end
    end
  end
end

function done(summary, latency, requests)
  local total_bad, total_checked = 0, 0
  for _, t in ipairs(threads) do
    total_bad = total_bad + (t:get("bad") or 0)
    total_checked = total_checked + (t:get("checked") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'RESULT {"label":"%s","requests":%d,"seconds":%.2f,"rps":%.1f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
    '"non2xx":%d,"socket_errors":%d,"timeouts":%d,"checked":%d,"bad_answers":%d}\n',
    os.getenv("WRK_LABEL") or "", summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.status, e.connect + e.read + e.write, e.timeout, total_checked, total_bad))
end
