-- wrk script for bench/rest.py: one of four requests (feed, post, like, login), each with
-- a random user's token (or login) and, for likes, a random post, read from the file
-- named by the environment variable BENCH_REST_DATA (one "token login post_id" a line).
-- Prints the summary as one JSON line after wrk's own report.
local kind = os.getenv("BENCH_REST_KIND")
local rows = {}
local counter = 0

function init(args)
  for line in io.lines(os.getenv("BENCH_REST_DATA")) do
    local token, login, post = line:match("(%S+) (%S+) (%S+)")
    rows[#rows + 1] = {token = token, login = login, post = post}
  end
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  counter = counter + 1
  local row = rows[math.random(#rows)]
  local auth = {["Authorization"] = "Bearer " .. row.token, ["Content-Type"] = "application/json"}
  if kind == "feed" then
    return wrk.format("GET", "/api/v1/feed?limit=20", auth)
  elseif kind == "post" then
    return wrk.format("POST", "/api/v1/posts", auth,
      '{"content": "bench post ' .. counter .. ' the quick brown fox jumps over the lazy dog"}')
  elseif kind == "like" then
    local other = rows[math.random(#rows)]
    return wrk.format("POST", "/api/v1/posts/" .. other.post .. "/likes", auth)
  else
    return wrk.format("POST", "/api/v1/auth/login", {["Content-Type"] = "application/json"},
      '{"login": "' .. row.login .. '", "password": "correct horse battery"}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d,'
      .. ' "p99_us": %d, "max_us": %d, "mean_us": %.1f, "status_errors": %d,'
      .. ' "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect + e.read + e.write, e.timeout))
end
