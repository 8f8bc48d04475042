--[[ ff_cancel — cancels a non-terminal execution from any state (terminal cancelled), removing it
from the eligible, delayed, leases and timeouts indexes and ending its open attempt (ended_cancelled).
Mode "holder": fenced by the lease; a replay after a lost reply (record already cancelled by this
very lease: same lease id (`elid`) + epoch + attempt id) replies cancelled = 1, reconciled = 1; any
other fence on an ended execution is EXECUTION_NOT_ACTIVE describing what ended it (as ff_fail).
Mode "operator": unfenced, audited in `cancelled_by`; when the execution was leased,
`c|<execution id>|<lease id>|<by>|<reason>` is published so the holder's gateway tells the worker.
An already terminal execution is not an error for an operator: cancelled = 0 and its current state.
An open frame stream closes (cancelled). A suspended execution's waitpoints close (cancelled) and it
leaves the `suspended` index.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] mode (holder|operator), [2] reason, [3] cancelled by, [4] lease id, [5] lease epoch,
  [6] attempt id (fence: holder mode only; operator mode passes "", "0", "").
Reply: {1, "OK", cancelled (0|1), public state, reconciled (0|1)}.
Errors: INVALID_ARGUMENT, NOT_FOUND; holder mode: LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE. ]]
redis.register_function('ff_cancel', H.wrap(function(keys, args)
  local prefix, core, u, eid = H.exec_keys(keys)
  H.argc(args, 6)
  local mode = H.enum(args[1], 'mode', { 'holder', 'operator' })
  local reason = H.str(args[2], 'reason', true)
  local by = H.str(args[3], 'cancelled_by', true)
  local holder = mode == 'holder'
  local lid, epoch, aid = args[4], 0, args[6]
  if holder then lid, epoch, aid = H.fence_args(args, 4) end
  local r = H.load(core)
  if r == nil then H.raise('NOT_FOUND', 'no such execution') end
  if r.phase == 'terminal' then
    if not holder then return { 1, 'OK', 0, r.pstate, 0 } end
    if r.outcome == 'cancelled' and H.settled_by(r, lid, epoch, aid) then return { 1, 'OK', 1, r.pstate, 1 } end
    H.not_active(r, 'execution already ended: ' .. tostring(r.pstate))
  end
  if holder then H.fence(r, lid, epoch, aid) end
  local now = H.now()
  local extra = { 'cancel_reason', reason, 'cancelled_by', by }
  if holder then extra[#extra + 1] = 'elid'; extra[#extra + 1] = lid end
  H.sv_terminal(prefix, u, core, now, 'cancelled', 'cancelled', extra)
  H.end_open_attempt(core, r, 'ended_cancelled', now)
  H.close_frames(core, r, 'cancelled', now)
  H.end_suspension(prefix, u, core, r.phase, 'cancelled', now)
  H.unindex(prefix, u, r.ns, r.lane)
  if not holder and r.own == 'leased' then
    redis.call('SPUBLISH', H.k_events(prefix), 'c|' .. eid .. '|' .. r.lid .. '|' .. by .. '|' .. reason)
  end
  return { 1, 'OK', 1, 'cancelled', 0 }
end))
