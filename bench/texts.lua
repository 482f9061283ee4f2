-- wrk script for bench/run.py: members text the bank at POST /twilio/messages.
--
-- Arguments (after "--"): run nonce, body, expected text, first number (digits, no "+"), how
-- many numbers, wrk threads.
--
-- Every request carries a fresh MessageSid ("SM" + 32 hex digits), because the bank answers
-- a repeated MessageSid from its Redis cache without doing the work:
--
--   SM <run nonce: 8 hex> <thread: 4 hex> <per-thread counter: 12 hex> <random: 8 hex>
--
-- bench/run.py gives every wrk invocation its own nonce, so warm-up, measured runs and reruns
-- against the same Redis never share a MessageSid.
--
-- The sender: with one number (BALANCE), every request comes from it. With many (NEED from
-- members the bench created, JOIN from new numbers), each thread walks its own share of the
-- numbers from an offset bench/run.py moves on between runs, so each number texts once.
--
-- Each response is checked: non-2xx statuses and bodies without the expected text are
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
local body = "BALANCE"
local expected = "Balance: 0 hours"
local first = 447700900123
local count = 1
local share = 1
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local fixed = ""

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function init(args)
  nonce = args[1] or nonce
  body = args[2] or body
  expected = args[3] or expected
  first = tonumber(args[4] or first)
  count = tonumber(args[5] or count)
  share = math.max(1, math.floor(count / tonumber(args[6] or 1)))
  fixed = "&To=&Body=" .. urlencode(body) .. "&NumMedia=0"
  math.randomseed(os.time() * 1000 + thread_id * 7919)
end

function request()
  counter = counter + 1
  local sid = string.format("SM%s%04x%012x%08x", nonce, thread_id, counter,
                            math.random(0, 0x7fffffff))
  local n = first
  if count > 1 then
    n = first + ((thread_id - 1) * share + (counter - 1)) % count
  end
  return wrk.format("POST", "/twilio/messages", headers,
                    "MessageSid=" .. sid .. "&From=%2B" .. string.format("%.0f", n) .. fixed)
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    bad_status = bad_status + 1
  elseif not string.find(body or "", expected, 1, true) then
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
