--[[ ff_expire_suspensions — suspension-timeout scanner step for one partition.
Takes up to `batch` entries of the `suspended` zset due by now. A still-suspended execution whose
timeout (`s_due`) has passed gets its timeout behaviour (`s_on`): resume -> waiting (original score,
resume reason `timeout`, one wake per queue); fail -> terminal failed, expire -> terminal expired
(fail_reason / fail_cat `suspension_timeout`); cancel -> terminal cancelled (cancelled_by
`suspension_timeout`). Terminal branches end the attempt and close its frame stream. The
suspension's waitpoints close (reason `timeout`). Stale entries are removed.
KEYS: [1] partition prefix `ff:{p:N}:`.
ARGV: [1] batch (1..10000).
Reply: {1, "OK", suspensions timed out, more (1 when the batch was full)}.
Errors: INVALID_ARGUMENT. ]]
H.SUSPENSION_TIMEOUT = {
  fail = { 'failed', 'failed', 'ended_failure', 'failed' },
  expire = { 'expired', 'expired', 'ended_expired', 'expired' },
  cancel = { 'cancelled', 'cancelled', 'ended_cancelled', 'cancelled' },
}

redis.register_function('ff_expire_suspensions', H.wrap(function(keys, args)
  local prefix = H.prefix(keys[1])
  H.argc(args, 1)
  local batch = H.int(args[1], 'batch', 1, 10000)
  local now = H.now()
  local skey = H.k_suspended(prefix)
  local due = redis.call('ZRANGEBYSCORE', skey, '-inf', now, 'LIMIT', 0, batch)
  local wakes = {}
  local done = 0
  for i = 1, #due do
    local u = due[i]
    local core = H.k_core(prefix, u)
    local r = H.load(core, H.F_SUSP)
    if r == nil or r.phase ~= 'suspended' or H.n(r.s_due) == 0 then
      redis.call('ZREM', skey, u)
    elseif H.n(r.s_due) > now then
      redis.call('ZADD', skey, r.s_due, u)
    else
      done = done + 1
      local t = H.SUSPENSION_TIMEOUT[r.s_on]
      if t == nil then
        H.resume(prefix, u, core, r, 'timeout', '', now, wakes)
      else
        local extra = t[1] == 'cancelled'
          and { 'cancel_reason', 'suspension timeout', 'cancelled_by', 'suspension_timeout' }
          or { 'fail_reason', 'suspension_timeout', 'fail_cat', 'suspension_timeout' }
        H.sv_terminal(prefix, u, core, now, t[1], t[2], extra)
        H.end_open_attempt(core, r, t[3], now)
        H.close_frames(core, r, t[4], now)
        H.end_suspension(prefix, u, core, 'suspended', 'timeout', now)
        H.unindex(prefix, u, r.ns, r.lane)
      end
    end
  end
  H.wake_flush(prefix, wakes)
  return { 1, 'OK', done, #due == batch and 1 or 0 }
end))
