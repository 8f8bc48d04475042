--[[ ff_release — undoes a claim whose task was never acknowledged (the session died before the push
arrived): fenced. A NEW attempt's claim is undone (attempt count restored, its attempt record
deleted, attempt index/id and attempt state back to their pending values, `started` back to 0 if it
was the first claim); a RESUMED attempt goes back to attempt_interrupted. The epoch stays (it is
monotonic, so the released fence is stale from now on). The execution goes back to eligible with its
ORIGINAL score (same place in line) and a wake is published.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id.
Reply: {1, "OK"}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE. ]]
redis.register_function('ff_release', H.wrap(function(keys, args)
  local prefix, core, u = H.exec_keys(keys)
  H.argc(args, 3)
  local lid, epoch, aid = H.fence_args(args, 1)
  local r = H.load(core)
  H.fence(r, lid, epoch, aid)
  local aidx, acount = H.n(r.aidx), H.n(r.acount)
  local astate, prev_aid, started = 'attempt_interrupted', r.aid, r.started
  if r.resumed ~= '1' then
    acount = acount - 1
    aidx = acount - 1
    astate = H.pending_astate(r.pend)
    prev_aid = aidx >= 0 and (redis.call('HGET', H.k_attempt(core, aidx), 'id') or '') or ''
    if aidx < 0 then started = 0 end
  end
  H.sv_waiting(core, astate, { 'aidx', aidx, 'acount', acount, 'aid', prev_aid, 'lid', '', 'lexp', 0,
    'sess', '', 'wid', '', 'winst', '', 'started', started, 'astarted', 0, 'resumed', 0 })
  if r.resumed == '1' then
    redis.call('HSET', H.k_attempt(core, aidx), 'state', 'interrupted')
  else
    redis.call('DEL', H.k_attempt(core, acount))
  end
  redis.call('ZREM', H.k_leases(prefix), u)
  H.timeout_idle(prefix, u, r.deadline)
  H.to_eligible(prefix, u, r.ns, r.lane, r.score)
  return { 1, 'OK' }
end))
