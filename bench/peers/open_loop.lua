-- Constant-rate (open-loop) load for wrk, which by itself only runs closed loops. Used by
-- bench/peers/run.sh for the latency at a fixed fraction of the peak rate.
--
--   taskset -c 1 wrk -t16 -c16 -d10s -s bench/peers/open_loop.lua http://127.0.0.1:PORT/PATH \
--     -- RATE 16
--
-- RATE is the total rate in requests per second; the second argument repeats the number of
-- threads (wrk starts each thread before it sets up the next, so no thread could learn the count
-- from the others). Threads and connections must be equal, one connection per thread: wrk does
-- not tell a script which connection it serves, so only with one connection per thread (one Lua
-- state each) do a state's request() and response() calls strictly alternate and belong to the
-- same request.
--
-- How the pacing works: each connection keeps its own schedule, one request every
-- interval = threads / RATE seconds, the connections' schedules staggered across one interval.
-- wrk calls delay() before every request on a connection (the first one too); delay() takes the
-- connection's next slot, moves the schedule on by one interval and returns the milliseconds
-- until that slot. wrk's timers have millisecond resolution, so delay() rounds down: a request
-- may leave up to 1 ms before its slot, never after it because of the pacing. When the server is
-- slower than the schedule (a response arrives after the next slot), no slot is skipped: the
-- late requests leave at once, one after the other, until the connection is back on schedule.
--
-- What is measured: each request's latency runs from its slot to its response (from the actual
-- send instead when that was earlier than the slot), as wrk2 measures to correct coordinated
-- omission: when the server stalls, every request scheduled during the stall counts its wait,
-- where wrk's own figures, counted from the actual send, would hide it. The generator's threads
-- are on the clock too: a thread that the kernel runs late (other work on wrk's CPU) sends late,
-- and that counts as latency, as it does with wrk2. done() prints one line of key=value pairs:
--   open_loop target_rps achieved_rps requests p50_us p90_us p99_us p999_us max_us
--             wrk_p99_us (wrk's own, from the actual send) http_errors (4xx, 5xx) errors (socket)
local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } open_loop_timespec;
  int clock_gettime(int clock_id, open_loop_timespec* tp);
]])
local kClockMonotonic = 1
local clock = ffi.new("open_loop_timespec")

local function now_us()
  ffi.C.clock_gettime(kClockMonotonic, clock)
  return tonumber(clock.tv_sec) * 1e6 + tonumber(clock.tv_nsec) / 1e3
end

-- Setup (wrk's main Lua state): number the threads, each before it starts.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads - 1)
end

-- Running (one Lua state per thread, so per connection). Globals are read back by done().
--
-- There is no response() callback: with one, wrk would copy every response's headers and body
-- into Lua, and that work on wrk's CPU would count as latency. A response's end is seen instead
-- in delay(), which wrk calls as soon as the connection is writable again after a complete
-- response (one turn of its event loop later), or after a reconnect (the proxy closed the
-- connection with its last response; the new connection's setup then counts in that latency).
local interval_us, next_slot_us, slot_us, start_us, in_flight, request_text

function init(args)
  target_rps, thread_count = tonumber(args[1]), tonumber(args[2])
  if not target_rps or target_rps <= 0 or not thread_count or thread_count < 1 then
    error("usage: wrk -tN -cN -s open_loop.lua URL -- RATE N (RATE: requests/s, all threads)")
  end
  interval_us = 1e6 * thread_count / target_rps
  request_text = wrk.format()
  latencies = {}
end

function delay()
  local now = now_us()
  if in_flight then
    latencies[#latencies + 1] = now - start_us
    in_flight = false
  end
  if next_slot_us == nil then
    next_slot_us = now + interval_us * thread_index / thread_count
  end
  slot_us = next_slot_us
  next_slot_us = next_slot_us + interval_us
  local wait_ms = math.floor((slot_us - now) / 1000)
  if wait_ms < 0 then
    return 0
  end
  return wait_ms
end

function request()
  -- Late (the server held the connection past the slot): count from the slot. Early (delay()
  -- rounds down): from the send. wrk also calls request() once at start to check the script,
  -- before any slot: nothing is sent then.
  if slot_us then
    start_us = math.min(slot_us, now_us())
    in_flight = true
  end
  return request_text
end

-- Done (the main state again): merge the threads' latencies and print the line.
function done(summary, latency, requests)
  local all, target = {}, 0
  for _, t in ipairs(threads) do
    for _, value in ipairs(t:get("latencies")) do
      all[#all + 1] = value
    end
    target = t:get("target_rps")
  end
  table.sort(all)
  local function percentile(p)
    if #all == 0 then
      return 0
    end
    return all[math.max(1, math.ceil(#all * p / 100))]
  end
  local e = summary.errors
  io.write(string.format(
    "open_loop target_rps=%.0f achieved_rps=%.0f requests=%d p50_us=%.0f p90_us=%.0f " ..
    "p99_us=%.0f p999_us=%.0f max_us=%.0f wrk_p99_us=%.0f http_errors=%d errors=%d\n",
    target, summary.requests / (summary.duration / 1e6), summary.requests, percentile(50),
    percentile(90), percentile(99), percentile(99.9), percentile(100), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
