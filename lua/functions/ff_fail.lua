--[[ ff_fail — the running attempt failed (fenced): schedule a retry or fail for good.
Retryable when the category is retryable (rp_cats empty or containing it) and retries < rp_max:
delay = fixed ? initial : min(initial * multiplier^retries, max delay), scaled by
(1 - jitter * sample); retries+1; state delayed/waiting_for_retry_backoff/pending_retry_attempt
(straight to eligible when the delay is 0). Otherwise terminal failed. The attempt ends
ended_failure. The record keeps epoch and attempt id until the next claim and the settling lease id
as `elid`, so a replay after a lost reply (same lease id + epoch + attempt id, attempt ended_failure)
is reconciled with the outcome that committed; a forged lease id is EXECUTION_NOT_ACTIVE.
An open frame stream of the attempt closes (failed, or retry_scheduled).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] reason, [5] category, [6] jitter sample in [0,1).
Reply: {1, "OK", outcome (retry_scheduled|failed), retry at (Unix ms, 0 when failed), retry count,
  reconciled (0|1)}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE. ]]
redis.register_function('ff_fail', H.wrap(function(keys, args)
  local prefix, core, u = H.exec_keys(keys)
  H.argc(args, 6)
  local lid, epoch, aid = H.fence_args(args, 1)
  local reason = H.str(args[4], 'reason', true)
  local cat = H.str(args[5], 'category', true)
  local sample = H.num(args[6], 'jitter_sample', 0, 1)
  local r = H.load(core)
  if r and r.phase ~= 'active' and H.settled_by(r, lid, epoch, aid)
      and H.attempt_state(core, r) == 'ended_failure' then
    if r.pstate == 'failed' then return { 1, 'OK', 'failed', 0, H.n(r.retries), 1 } end
    if r.phase == 'runnable' then return { 1, 'OK', 'retry_scheduled', H.n(r.delay_until), H.n(r.retries), 1 } end
    H.not_active(r, 'execution already ended: ' .. tostring(r.pstate))
  end
  if r and r.phase == 'terminal' and H.same_attempt(r, epoch, aid) then
    H.not_active(r, 'execution already ended: ' .. tostring(r.pstate))
  end
  H.fence(r, lid, epoch, aid)

  local now = H.now()
  local retries = H.n(r.retries)
  local retryable = retries < H.n(r.rp_max)
  if retryable and r.rp_cats and r.rp_cats ~= '' then
    retryable = H.csv_set(r.rp_cats)[cat] == true
  end
  local akey = H.k_attempt(core, H.n(r.aidx))
  if not retryable then
    H.sv_terminal(prefix, u, core, now, 'failed', 'failed', { 'fail_reason', reason, 'fail_cat', cat, 'elid', lid })
    redis.call('HSET', akey, 'state', 'ended_failure', 'ended', now, 'fail_reason', reason, 'fail_cat', cat)
    H.close_frames(core, r, 'failed', now)
    redis.call('ZREM', H.k_leases(prefix), u)
    redis.call('ZREM', H.k_timeouts(prefix), u)
    return { 1, 'OK', 'failed', 0, retries, 0 }
  end

  local delay = H.n(r.rp_init)
  if r.rp_kind == 'exponential' then
    delay = math.min(delay * math.pow(H.n(r.rp_mult), retries), H.n(r.rp_maxd))
  end
  delay = math.floor(delay * (1 - H.n(r.rp_jit) * sample))
  if delay < 0 then delay = 0 end
  local retry_at = now + delay
  retries = retries + 1
  local extra = { 'retries', retries, 'pend', 'retry', 'delay_until', retry_at, 'lid', '', 'lexp', 0,
    'astarted', 0, 'resumed', 0, 'fail_reason', reason, 'fail_cat', cat, 'elid', lid }
  if delay > 0 then
    H.sv_delayed(core, 'waiting_for_retry_backoff', 'pending_retry_attempt', extra)
  else
    H.sv_waiting(core, 'pending_retry_attempt', extra)
  end
  redis.call('HSET', akey, 'state', 'ended_failure', 'ended', now, 'fail_reason', reason, 'fail_cat', cat)
  H.close_frames(core, r, 'retry_scheduled', now)
  redis.call('ZREM', H.k_leases(prefix), u)
  H.timeout_idle(prefix, u, r.deadline)
  if delay > 0 then
    redis.call('ZADD', H.k_delayed(prefix), retry_at, u)
  else
    H.to_eligible(prefix, u, r.ns, r.lane, r.score)
  end
  return { 1, 'OK', 'retry_scheduled', retry_at, retries, 0 }
end))
