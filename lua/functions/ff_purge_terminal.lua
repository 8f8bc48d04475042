--[[ ff_purge_terminal — retention scanner step for one partition.
Deletes up to `batch` executions that ended (completed, failed, cancelled, expired) at least
`retention` ms ago: the record, input, result, tags, every attempt record and every attempt's
frame stream and its meta, its waitpoints, signals and signal idempotency keys. Entries whose record is gone or no longer terminal are only dropped
from the index. An execution leaves the index only after its keys are gone (UNLINK in chunks, so
any number of attempts fits). An idempotency key keeps its own 24 h TTL; once its execution is
purged, a create with that key makes a new execution.
KEYS: [1] partition prefix `ff:{p:N}:`.
ARGV: [1] batch (1..10000), [2] retention (ms, 1..2^53-1).
Reply: {1, "OK", executions purged, more (1 when the batch was full)}.
Errors: INVALID_ARGUMENT. ]]
-- Keys per UNLINK: far below Lua's unpack limit (about 8000 values).
H.PURGE_CHUNK = 900

redis.register_function('ff_purge_terminal', H.wrap(function(keys, args)
  local prefix = H.prefix(keys[1])
  H.argc(args, 2)
  local batch = H.int(args[1], 'batch', 1, 10000)
  local retention = H.int(args[2], 'retention_ms', 1, H.MAX_INT)
  local tkey = H.k_terminal(prefix)
  local due = redis.call('ZRANGEBYSCORE', tkey, '-inf', H.now() - retention, 'LIMIT', 0, batch)
  local done = 0
  for i = 1, #due do
    local u = due[i]
    local core = H.k_core(prefix, u)
    local v = redis.call('HMGET', core, 'phase', 'acount', 'fopen')
    if v[1] == 'terminal' then
      done = done + 1
      -- Attempts 0..acount-1, plus the one a frame stream may still name (a released claim).
      local last = H.n(v[2]) - 1
      local fopen = tonumber(v[3])
      if fopen and fopen > last then last = fopen end
      local doomed = { core .. ':in', core .. ':out', core .. ':tags', H.k_wps(core), H.k_signals(core), H.k_sigkeys(core) }
      for _, w in ipairs(redis.call('ZRANGE', H.k_wps(core), 0, -1)) do doomed[#doomed + 1] = H.k_wp(core, w) end
      for a = 0, last do
        doomed[#doomed + 1] = H.k_attempt(core, a)
        doomed[#doomed + 1] = H.k_frames(core, H.s(a))
        doomed[#doomed + 1] = H.k_frames_meta(core, H.s(a))
        if #doomed >= H.PURGE_CHUNK then
          redis.call('UNLINK', unpack(doomed))
          doomed = {}
        end
      end
      doomed[#doomed + 1] = core
      redis.call('UNLINK', unpack(doomed))
    end
    redis.call('ZREM', tkey, u)
  end
  return { 1, 'OK', done, #due == batch and 1 or 0 }
end))
