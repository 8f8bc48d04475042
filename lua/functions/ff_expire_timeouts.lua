--[[ ff_expire_timeouts — deadline / attempt-timeout scanner step for one partition.
Takes up to `batch` entries of the timeouts zset due by now. An execution whose deadline has passed
(any non-terminal state), or that is active with attempt start + attempt timeout <= now, becomes
terminal expired (fail_reason and fail_cat "deadline" or "attempt_timeout"), its open attempt
ended_expired, removed from every index; if it was leased, `c|<execution id>|<lease id>|<by>|<reason>`
is published with by = "deadline" or "attempt_timeout". An entry not yet due for its execution is
re-scored to the next due time; a stale one (terminal, missing, nothing left to time) is removed.
The attempt start (`astarted`) is the time of the current claim (a resumed attempt restarts its clock).
An open frame stream closes (expired); a suspended execution's waitpoints close (expired).
KEYS: [1] partition prefix `ff:{p:N}:`.
ARGV: [1] batch (1..10000).
Reply: {1, "OK", executions expired, more (1 when the batch was full)}.
Errors: INVALID_ARGUMENT. ]]
redis.register_function('ff_expire_timeouts', H.wrap(function(keys, args)
  local prefix, part = H.prefix(keys[1])
  H.argc(args, 1)
  local batch = H.int(args[1], 'batch', 1, 10000)
  local now = H.now()
  local tkey = H.k_timeouts(prefix)
  local due = redis.call('ZRANGEBYSCORE', tkey, '-inf', now, 'LIMIT', 0, batch)
  local done = 0
  for i = 1, #due do
    local u = due[i]
    local core = H.k_core(prefix, u)
    local r = H.load(core)
    if r == nil or r.phase == 'terminal' then
      redis.call('ZREM', tkey, u)
    else
      local deadline = H.n(r.deadline)
      local v = redis.call('HMGET', core, 'atimeout', 'astarted')
      local attempt_due = 0
      if r.phase == 'active' and H.n(v[1]) > 0 and H.n(v[2]) > 0 then attempt_due = H.n(v[2]) + H.n(v[1]) end
      local why = nil
      if deadline > 0 and deadline <= now then
        why = 'deadline'
      elseif attempt_due > 0 and attempt_due <= now then
        why = 'attempt_timeout'
      end
      if why then
        done = done + 1
        H.sv_terminal(prefix, u, core, now, 'expired', 'expired', { 'fail_reason', why, 'fail_cat', why })
        H.end_open_attempt(core, r, 'ended_expired', now)
        H.close_frames(core, r, 'expired', now)
        H.end_suspension(prefix, u, core, r.phase, 'expired', now)
        H.unindex(prefix, u, r.ns, r.lane)
        if r.own == 'leased' then
          local text = why == 'deadline' and 'execution deadline exceeded' or 'attempt timeout exceeded'
          redis.call('SPUBLISH', H.k_events(prefix), 'c|' .. part .. ':' .. u .. '|' .. r.lid .. '|' .. why .. '|' .. text)
        end
      else
        local next_due = deadline
        if attempt_due > 0 and (next_due == 0 or attempt_due < next_due) then next_due = attempt_due end
        if next_due > 0 then redis.call('ZADD', tkey, next_due, u) else redis.call('ZREM', tkey, u) end
      end
    end
  end
  return { 1, 'OK', done, #due == batch and 1 or 0 }
end))
