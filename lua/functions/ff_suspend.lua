--[[ ff_suspend — the holder suspends its attempt until a signal condition is met (fenced).
The condition counts signals delivered to the suspension's waitpoints: every PENDING waitpoint of
the current attempt (ff_create_waitpoint; its buffered signals count at once) plus one new
waitpoint created here. Modes: any (one matching signal), all (every name at least once), count
(n matching signals); names "" match every signal. When the buffered signals already satisfy it,
nothing is suspended: the reply is already_satisfied, the lease is KEPT, the pending waitpoints
close (satisfied) and the record notes the satisfying signals (ff_resume_signals).
Otherwise: suspended / unowned / not_applicable / waiting_for_signal / attempt_interrupted, public
state suspended; the lease is released (out of `leases`), the attempt record becomes `suspended`
(not ended: its frame stream stays open and the same attempt resumes), the waitpoints become
active, a timeout is filed in `suspended` (score = timeout at).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] reason code, [5] mode any|all|count,
  [6] signal names CSV ("" = any), [7] count n (count mode, 1..10000; else 0), [8] timeout at (Unix
  ms, 0 = none), [9] on timeout fail|cancel|expire|resume, [10] new waitpoint id, [11] new
  waitpoint key ("" = none), [12] most waitpoints per execution.
A replay after a lost reply (the record was suspended by this very lease: lease id (`elid`) + epoch + attempt id) changes
nothing and answers the committed suspension again (its newest waitpoint and timeout), reconciled 1.
Reply: {1, "OK", outcome suspended|already_satisfied, new waitpoint id ("" when already
  satisfied), waitpoints the suspension waits on, timeout at (Unix ms, 0 = none), reconciled 0|1}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE,
  WAITPOINT_EXISTS (an open waitpoint of the attempt has that key), LIMIT_EXCEEDED (limit
  waitpoints_per_execution). ]]
redis.register_function('ff_suspend', H.wrap(function(keys, args)
  local prefix, core, u = H.exec_keys(keys)
  H.argc(args, 12)
  local lid, epoch, aid = H.fence_args(args, 1)
  local reason = H.str(args[4], 'reason_code', true)
  local mode = H.enum(args[5], 'mode', { 'any', 'all', 'count' })
  local names = H.str(args[6], 'signal_names', true)
  local n = H.int(args[7], 'count', 0, 10000)
  if mode == 'count' and n < 1 then H.invalid('count', args[7]) end
  local due = H.int(args[8], 'timeout_at', 0, H.MAX_INT)
  local on = H.enum(args[9], 'on_timeout', { 'fail', 'cancel', 'expire', 'resume' })
  local wnew = H.str(args[10], 'waitpoint_id')
  local wkey = H.str(args[11], 'waitpoint_key', true)
  local maxw = H.int(args[12], 'max_waitpoints', 1, H.MAX_INT)
  local r = H.load(core)
  if r and r.phase == 'suspended' and H.settled_by(r, lid, epoch, aid) then
    local v = redis.call('HMGET', core, 's_wps', 's_due')
    local last, n = '', 0
    for w in string.gmatch(v[1] or '', '[^,]+') do last, n = w, n + 1 end
    return { 1, 'OK', 'suspended', last, n, H.s(H.n(v[2])), 1 }
  end
  H.fence(r, lid, epoch, aid)
  local now = H.now()

  -- The attempt's open pending waitpoints (buffered signals count) and the new key's uniqueness.
  local wps = redis.call('ZRANGE', H.k_wps(core), 0, -1)
  local pending, pset, oldest = {}, {}, nil
  for i = 1, #wps do
    local wp = H.wp_load(core, wps[i])
    local st = wp and H.wp_state(wp, r, now)
    if st == 'pending' then
      pending[#pending + 1] = wp.id
      pset[wp.id] = true
      if oldest == nil or H.n(wp.created) < oldest then oldest = H.n(wp.created) end
    end
    if wkey ~= '' and (st == 'pending' or st == 'active') and wp.key == wkey then
      H.raise('WAITPOINT_EXISTS', 'an open waitpoint of this attempt has key ' .. wkey, 'waitpoint_key', wkey)
    end
  end
  local c = { s_mode = mode, s_names = names, s_n = n, s_seen = '', s_got = 0, s_sigs = '' }
  local satisfied = false
  if oldest then
    local entries = redis.call('XRANGE', H.k_signals(core), H.s(oldest), '+')
    for i = 1, #entries do
      local f = entries[i][2]
      local w, name = nil, nil
      for j = 1, #f, 2 do
        if f[j] == 'w' then w = f[j + 1] elseif f[j] == 'n' then name = f[j + 1] end
      end
      if w and pset[w] and H.cond_apply(c, entries[i][1], name) then
        satisfied = true
        break
      end
    end
  end
  local pcsv = table.concat(pending, ',')
  if satisfied then
    redis.call('HSET', core, 'rreason', 'signal', 'rsigs', c.s_sigs, 'raidx', H.s(H.n(r.aidx)))
    H.close_wps(core, pcsv, 'satisfied', now)
    return { 1, 'OK', 'already_satisfied', '', #pending, 0, 0 }
  end
  if #wps >= maxw then H.limit('waitpoints_per_execution', maxw, #wps + 1) end

  H.set_state(core, 'suspended', 'unowned', 'not_applicable', 'waiting_for_signal', 'none', 'attempt_interrupted', 'suspended',
    { 'lid', '', 'elid', lid, 'lexp', 0, 'astarted', 0, 's_reason', reason, 's_at', now, 's_due', due, 's_on', on,
      's_mode', mode, 's_names', names, 's_n', n, 's_seen', c.s_seen, 's_got', c.s_got, 's_sigs', c.s_sigs,
      's_wps', H.csv_add(pcsv, wnew) })
  redis.call('HSET', H.k_attempt(core, H.n(r.aidx)), 'state', 'suspended')
  redis.call('ZREM', H.k_leases(prefix), u)
  H.timeout_idle(prefix, u, r.deadline)
  if due > 0 then redis.call('ZADD', H.k_suspended(prefix), due, u) end
  for i = 1, #pending do redis.call('HSET', H.k_wp(core, pending[i]), 'state', 'active') end
  redis.call('HSET', H.k_wp(core, wnew), 'id', wnew, 'key', wkey, 'state', 'active', 'aidx', H.s(H.n(r.aidx)),
    'created', now, 'expires', due, 'signals', 0)
  redis.call('ZADD', H.k_wps(core), now, wnew)
  return { 1, 'OK', 'suspended', wnew, #pending + 1, H.s(due), 0 }
end))
