--[[ ff_delay — the holder releases its lease and the SAME attempt resumes later (fenced).
The attempt becomes interrupted; the execution goes to the delayed zset (delayed /
waiting_for_delay / attempt_interrupted), or straight back to eligible (with its original score and
a wake) when delay_until is not in the future. The next claim resumes the attempt (resume reason
`delay`; `rreason` / `rsigs` are reset).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] delay until (Unix ms).
Reply: {1, "OK"}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE. ]]
redis.register_function('ff_delay', H.wrap(function(keys, args)
  local prefix, core, u = H.exec_keys(keys)
  H.argc(args, 4)
  local lid, epoch, aid = H.fence_args(args, 1)
  local until_ms = H.int(args[4], 'delay_until', 0, H.MAX_INT)
  local r = H.load(core)
  H.fence(r, lid, epoch, aid)
  local now = H.now()
  local extra = { 'delay_until', until_ms, 'lid', '', 'lexp', 0, 'astarted', 0, 'rreason', 'delay', 'rsigs', '' }
  local later = until_ms > now
  if later then
    H.sv_delayed(core, 'waiting_for_delay', 'attempt_interrupted', extra)
  else
    H.sv_waiting(core, 'attempt_interrupted', extra)
  end
  redis.call('HSET', H.k_attempt(core, H.n(r.aidx)), 'state', 'interrupted')
  redis.call('ZREM', H.k_leases(prefix), u)
  H.timeout_idle(prefix, u, r.deadline)
  if later then
    redis.call('ZADD', H.k_delayed(prefix), until_ms, u)
  else
    H.to_eligible(prefix, u, r.ns, r.lane, r.score)
  end
  return { 1, 'OK' }
end))
