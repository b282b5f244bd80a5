-- mix.lua: the wrk script of tests/load/run.sh.
--
--   wrk ... -s mix.lua URL -- MAMBA_MODEL [mix|overload] [SESSIONS_PER_THREAD]
--
-- mix: a round robin of HMM /decode (casino, 100 observations), Mamba
-- /decode (a 62-byte text) and streamed Mamba /generate (16 tokens, SSE) on
-- sessions. Each thread cycles through its own SESSIONS_PER_THREAD ids (at
-- least its connections: default 64) in turn, and an id goes back in line
-- only once its previous stream has been read to the end, so no request
-- should ever meet a busy session, and every session exists after a short
-- warm-up (the soak then adds none: memory should stay flat).
-- overload: Mamba /decode only, counting 503s and whether each carries
-- Retry-After.
--
-- Each thread counts answers by kind and status; done() prints one line
-- "LOADRESULT key=value ..." that run.sh parses. (The counters are one flat
-- table: wrk 4.1's thread:get crashes on nested tables.)

local threads = {}
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("tid", nthreads)
   table.insert(threads, thread)
end

-- per thread (globals, so that done() can read them with thread:get)
stats = {hmm = 0, mdec = 0, gen = 0, bad_stream = 0, bad_body = 0, lost_session = 0,
         retry_after_missing = 0} -- and s<status> = count
local mode, hmm_body, mdec_body, gen_fmt
local headers = {["Content-Type"] = "application/json"}
local free = {}      -- session ids whose last stream has ended, oldest first
local sessions = 0   -- ids made so far (more only if an answer lost one)
local n = 0

function init(args)
   local model = args[1] or "mamba"
   mode = args[2] or "mix"
   for i = 1, tonumber(args[3] or "64") do
      sessions = sessions + 1
      free[i] = string.format("load-%d-%d", tid, sessions)
   end
   math.randomseed(tid)
   local obs = {}
   for i = 1, 100 do obs[i] = '"' .. math.random(1, 6) .. '"' end
   hmm_body = '{"model":"casino","observations":[' .. table.concat(obs, ",") .. ']}'
   mdec_body = '{"model":"' .. model ..
      '","text":"The quick brown fox jumps over the lazy dog, again and again."}'
   gen_fmt = '{"model":"' .. model .. '","prompt":" and then","max_tokens":16,' ..
      '"temperature":0.8,"seed":%d,"stream":true,"session":"%s"}'
end

function request()
   n = n + 1
   local k = n % 3
   if mode == "overload" or k == 1 then
      if mode == "overload" then
         return wrk.format("POST", "/decode", headers, mdec_body)
      end
      return wrk.format("POST", "/decode", headers, hmm_body)
   elseif k == 2 then
      return wrk.format("POST", "/decode", headers, mdec_body)
   end
   local sid = table.remove(free, 1)
   if not sid then
      sessions = sessions + 1
      sid = string.format("load-%d-%d", tid, sessions)
   end
   return wrk.format("POST", "/generate", headers, string.format(gen_fmt, n, sid))
end

function response(status, hdrs, body)
   local key = "s" .. status
   stats[key] = (stats[key] or 0) + 1
   if status == 503 and not (hdrs["Retry-After"] or hdrs["retry-after"]) then
      stats.retry_after_missing = stats.retry_after_missing + 1
   end
   if status ~= 200 then
      return
   end
   if body:find("data: ", 1, true) then
      stats.gen = stats.gen + 1
      if not body:find("data: [DONE]", 1, true) or body:find('"error"', 1, true) then
         stats.bad_stream = stats.bad_stream + 1
      end
      local sid = body:match('"session":"([^"]+)"')
      if sid then
         table.insert(free, sid)
      else
         stats.lost_session = stats.lost_session + 1
      end
   elseif body:find('"path"', 1, true) then
      stats.hmm = stats.hmm + 1
   elseif body:find('"logprobs"', 1, true) then
      stats.mdec = stats.mdec + 1
   else
      stats.bad_body = stats.bad_body + 1
   end
end

function done(summary, latency, requests)
   local total = {hmm = 0, mdec = 0, gen = 0, bad_stream = 0, bad_body = 0, lost_session = 0,
                  retry_after_missing = 0}
   local by_status = {}
   for _, t in ipairs(threads) do
      local s = t:get("stats")
      for key, count in pairs(s) do
         local code = key:match("^s(%d+)$")
         if code then
            code = tonumber(code)
            by_status[code] = (by_status[code] or 0) + count
         else
            total[key] = total[key] + count
         end
      end
   end
   local codes = {}
   for code, count in pairs(by_status) do table.insert(codes, code .. ":" .. count) end
   table.sort(codes)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "LOADRESULT requests=%d seconds=%.1f rps=%.1f hmm=%d mdec=%d gen=%d bad_stream=%d " ..
      "bad_body=%d lost_session=%d retry_after_missing=%d s200=%d s503=%d s429=%d " ..
      "connect_err=%d read_err=%d write_err=%d timeout_err=%d p50_ms=%.1f p90_ms=%.1f " ..
      "p99_ms=%.1f max_ms=%.1f statuses=%s\n",
      summary.requests, secs, summary.requests / secs, total.hmm, total.mdec, total.gen,
      total.bad_stream, total.bad_body, total.lost_session, total.retry_after_missing,
      by_status[200] or 0, by_status[503] or 0, by_status[429] or 0, e.connect, e.read,
      e.write, e.timeout, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, table.concat(codes, ",")))
end
