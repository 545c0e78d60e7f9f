-- wrk script: POST one pre-built JSON body per request, cycling through a file of bodies
-- (one per line), each connection starting at its own offset; prints a JSON summary.
-- Usage: wrk -t T -c C -d S -s embed.lua URL -- BODIES_FILE PATH
local bodies = {}
local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   for line in io.lines(args[1]) do
      bodies[#bodies + 1] = line
   end
   wrk.method = "POST"
   wrk.path = args[2] or "/v1/embeddings"
   wrk.headers["Content-Type"] = "application/json"
   position = (id * 7919) % #bodies
end

function request()
   position = position % #bodies + 1
   return wrk.format(nil, nil, nil, bodies[position])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"non_2xx": %d, "socket_errors": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
