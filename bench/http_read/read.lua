-- wrk script for bench/http_read: a governed point read through POST /v1/query.
--   GH_TOKEN   bearer token (required)
--   GH_ROWS    ids are drawn uniformly from 1..GH_ROWS (default 100000)
-- Keep-alive: wrk reuses each connection (HTTP/1.1, no Connection: close).
-- done() prints one machine-readable line, "WRK_RESULT key=value ...", that bench/http_read/run
-- parses (latencies in microseconds, as wrk measures them).

local token = os.getenv("GH_TOKEN")
local rows = tonumber(os.getenv("GH_ROWS") or "100000")
local headers = {
   ["Content-Type"] = "application/json",
   ["Authorization"] = "Bearer " .. (token or ""),
}
local fmt = '{"resource":"bench","environment":"prod",' ..
   '"sql":"SELECT id, name, balance FROM accounts WHERE id = ?","params":[%d]}'

local counter = 0
function setup(thread)
   counter = counter + 1
   thread:set("seed", counter)
end

function init(args)
   if not token or token == "" then
      io.stderr:write("read.lua: set GH_TOKEN to a bearer token\n")
      os.exit(2)
   end
   -- each thread has its own Lua state; seed it differently
   math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
   return wrk.format("POST", "/v1/query", headers, string.format(fmt, math.random(1, rows)))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
