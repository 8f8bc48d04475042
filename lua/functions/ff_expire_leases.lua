--[[ ff_expire_leases — lease-expiry scanner step for one partition.
Takes up to `batch` entries of the leases zset due by now. For each execution still leased with an
expired lease: publishes `l|<execution id>|<lease id>|LEASE_EXPIRED`; then, when reclaims >=
max_reclaims, terminal failed (fail_reason "lease expired; reclaim cap reached", fail_cat
"lease_expired", attempt ended_failure); else reclaims+1, the attempt record becomes `reclaimed`,
and the execution goes back to eligible with its ORIGINAL score (pend = reclaim: the next claim
starts a new attempt of type reclaim), with one wake per queue. The record keeps its epoch and
attempt id, so the old holder's fence gets LEASE_EXPIRED. An open frame stream of the attempt closes
(lease_lost; failed at the reclaim cap). Stale entries (not leased, or renewed
meanwhile) are removed or re-scored.
KEYS: [1] partition prefix `ff:{p:N}:`.
ARGV: [1] batch (1..10000).
Reply: {1, "OK", executions expired, more (1 when the batch was full)}.
Errors: INVALID_ARGUMENT. ]]
redis.register_function('ff_expire_leases', H.wrap(function(keys, args)
  local prefix, part = H.prefix(keys[1])
  H.argc(args, 1)
  local batch = H.int(args[1], 'batch', 1, 10000)
  local now = H.now()
  local lkey = H.k_leases(prefix)
  local due = redis.call('ZRANGEBYSCORE', lkey, '-inf', now, 'LIMIT', 0, batch)
  local wakes = {}
  local done = 0
  for i = 1, #due do
    local u = due[i]
    local core = H.k_core(prefix, u)
    local v = redis.call('HMGET', core, 'phase', 'own', 'lid', 'lexp', 'aidx', 'reclaims', 'max_reclaims',
      'ns', 'lane', 'score', 'deadline', 'fopen')
    if v[1] ~= 'active' or v[2] ~= 'leased' then
      redis.call('ZREM', lkey, u)
    elseif H.n(v[4]) > now then
      redis.call('ZADD', lkey, v[4], u)
    else
      done = done + 1
      local akey = H.k_attempt(core, H.n(v[5]))
      local reclaims = H.n(v[6])
      if reclaims >= H.n(v[7]) then
        local why = 'lease expired; reclaim cap reached'
        H.sv_terminal(prefix, u, core, now, 'failed', 'failed', { 'fail_reason', why, 'fail_cat', 'lease_expired' })
        redis.call('HSET', akey, 'state', 'ended_failure', 'ended', now, 'fail_reason', why, 'fail_cat', 'lease_expired')
        H.close_frames(core, { fopen = v[12] }, 'failed', now)
        redis.call('ZREM', lkey, u)
        redis.call('ZREM', H.k_timeouts(prefix), u)
      else
        H.sv_waiting(core, 'pending_retry_attempt', { 'reclaims', reclaims + 1, 'pend', 'reclaim', 'lid', '',
          'lexp', 0, 'astarted', 0, 'resumed', 0 })
        redis.call('HSET', akey, 'state', 'reclaimed', 'ended', now)
        H.close_frames(core, { fopen = v[12] }, 'lease_lost', now)
        redis.call('ZREM', lkey, u)
        H.timeout_idle(prefix, u, v[11])
        H.to_eligible(prefix, u, v[8], v[9], v[10], wakes)
      end
      redis.call('SPUBLISH', H.k_events(prefix), 'l|' .. part .. ':' .. u .. '|' .. v[3] .. '|LEASE_EXPIRED')
    end
  end
  H.wake_flush(prefix, wakes)
  return { 1, 'OK', done, #due == batch and 1 or 0 }
end))
