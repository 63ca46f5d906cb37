-- wrk script: send each pre-built push of a file once, one connection per push.
--
--   wrk -t2 -c16 -d5s -s bench/wrk_pushes.lua http://127.0.0.1:8000/wx -- pushes.bin 2
--
-- (the last argument repeats wrk's thread count).
--
-- The file holds raw HTTP requests, each after a line with its length in bytes. Thread i of n
-- sends requests i, i+n, i+2n... so no two threads send the same push; a thread that runs out
-- starts over (then pushes repeat, the service answers them from its ledger) and says so in
-- the summary. (wrk asks each thread for one request up front that it never sends: that
-- push is skipped, not repeated.) done() prints one line, "wrk-json {...}", that
-- bench/wrk.py reads.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "rb"))
   local data = file:read("*a")
   file:close()
   local all = {}
   local pos = 1
   while pos <= #data do
      local newline = data:find("\n", pos, true)
      local size = tonumber(data:sub(pos, newline - 1))
      all[#all + 1] = data:sub(newline + 1, newline + size)
      pos = newline + 1 + size
   end
   local stride = tonumber(args[2])
   mine = {}
   for i = id + 1, #all, stride do
      mine[#mine + 1] = all[i]
   end
   index = 0
   wrapped = 0
end

function request()
   index = index + 1
   if index > #mine then
      index = 1
      wrapped = wrapped + 1
   end
   return mine[index]
end

function done(summary, latency, requests)
   local wraps = 0
   for _, thread in ipairs(threads) do
      wraps = wraps + thread:get("wrapped")
   end
   local errors = summary.errors
   io.write(string.format(
      'wrk-json {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
      '"max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
      '"wrapped": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      wraps))
end
