--[[ ff_complete — terminal success of the running attempt (fenced), with an optional result.
Replay reconciliation: when the record is already terminal and (lease id, epoch, attempt id) are the
ones that settled it (`elid`, `epoch`, `aid`), a success replies reconciled = 1; any other outcome,
or a lease id that did not settle it, is EXECUTION_NOT_ACTIVE with detail (state, outcome, epoch,
attempt_id) saying what raced in. An open frame stream closes (completed).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] has result (0|1), [5] result (bytes; "" when none).
Reply: {1, "OK", reconciled (0|1)}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE. ]]
redis.register_function('ff_complete', H.wrap(function(keys, args)
  local prefix, core, u = H.exec_keys(keys)
  H.argc(args, 5)
  local lid, epoch, aid = H.fence_args(args, 1)
  local has_result = H.int(args[4], 'has_result', 0, 1)
  local result = H.str(args[5], 'result', true)
  local r = H.load(core, H.F_FENCE)
  if r and r.phase == 'terminal' and H.same_attempt(r, epoch, aid) then
    if r.outcome == 'success' and r.elid == lid then return { 1, 'OK', 1 } end
    H.not_active(r, 'execution already ended: ' .. tostring(r.pstate))
  end
  H.fence(r, lid, epoch, aid)
  local now = H.now()
  H.sv_terminal(prefix, u, core, now, 'success', 'completed', { 'has_result', has_result, 'elid', lid })
  if has_result == 1 then redis.call('SET', core .. ':out', result) end
  redis.call('HSET', H.k_attempt(core, H.n(r.aidx)), 'state', 'ended_success', 'ended', now)
  H.close_frames(core, r, 'completed', now)
  redis.call('ZREM', H.k_leases(prefix), u)
  redis.call('ZREM', H.k_timeouts(prefix), u)
  return { 1, 'OK', 0 }
end))
