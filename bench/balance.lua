-- wrk script for bench/run.py: a member texts BALANCE to POST /twilio/messages.
--
-- Every request carries a fresh MessageSid ("SM" + 32 hex digits), because the bank answers
-- a repeated MessageSid from its Redis cache without doing the work:
--
--   SM <run nonce: 8 hex> <thread: 4 hex> <per-thread counter: 12 hex> <random: 8 hex>
--
-- The run nonce is wrk's first script argument (after "--"); bench/run.py gives every wrk
-- invocation its own, so warm-up, measured runs and reruns against the same Redis never share
-- a MessageSid. The phone number is the second argument (default +447700900123).
--
-- Each response is checked: non-2xx statuses and bodies without "Balance: 0 hours" are
-- counted, and done() prints one line, BENCH_JSON {...}, that bench/run.py parses.

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
  table.insert(threads, thread)
end

-- Globals (not locals) so that done() can read them with thread:get().
thread_id = 0
counter = 0
responses = 0
bad_status = 0
bad_body = 0

local nonce = "00000000"
local fixed = ""
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function init(args)
  nonce = args[1] or nonce
  local phone = args[2] or "+447700900123"
  fixed = "&From=" .. urlencode(phone) .. "&To=&Body=BALANCE&NumMedia=0"
  math.randomseed(os.time() * 1000 + thread_id * 7919)
end

function request()
  counter = counter + 1
  local sid = string.format("SM%s%04x%012x%08x", nonce, thread_id, counter,
                            math.random(0, 0x7fffffff))
  return wrk.format("POST", "/twilio/messages", headers, "MessageSid=" .. sid .. fixed)
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    bad_status = bad_status + 1
  elseif not string.find(body or "", "Balance: 0 hours", 1, true) then
    bad_body = bad_body + 1
  end
end

function done(summary, latency, requests)
  local total_responses, total_bad_status, total_bad_body = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_responses = total_responses + (thread:get("responses") or 0)
    total_bad_status = total_bad_status + (thread:get("bad_status") or 0)
    total_bad_body = total_bad_body + (thread:get("bad_body") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "responses": %d, "bad_status": %d, '
      .. '"bad_body": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"mean_us": %.1f}\n',
    summary.requests, summary.duration, total_responses, total_bad_status, total_bad_body,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
