--[[ ff_deliver_signal — records a signal on a waitpoint and evaluates the suspension's condition.
The gateway has already checked the waitpoint token (HMAC over execution, waitpoint and expiry):
this function is only reached with a genuine token, so its errors may describe state.
Order: record and waitpoint exist; a repeated idempotency key on this waitpoint answers duplicate
with the first signal's id (nothing written) — even once the waitpoint has closed, so a retry after
a lost reply (e.g. of the signal that resumed it) is answered, not refused; the waitpoint is open
(WAITPOINT_CLOSED otherwise: closed, expired, its attempt over, or the execution ended); the
per-execution signal cap;
then XADD to the execution's signal stream (entry id = signal id). A PENDING waitpoint only
buffers it (ff_suspend counts it). An ACTIVE one applies it to the condition: when satisfied the
execution resumes (waiting, original score, wake; `rreason` = signal, `rsigs` = the matching signals).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] waitpoint id, [2] signal name, [3] payload (bytes), [4] source, [5] idempotency key
  ("" = none), [6] most signals per execution, [7] sender traceparent, [8] sender tracestate.
Reply: {1, "OK", effect accepted|triggered_resume|duplicate, signal id, execution traceparent,
  execution tracestate}.
Errors: INVALID_ARGUMENT, NOT_FOUND (detail `waitpoint_id` when only the waitpoint is unknown),
  WAITPOINT_CLOSED (detail `state`: closed|expired, `execution_state`), LIMIT_EXCEEDED (limit
  signals_per_execution). ]]
redis.register_function('ff_deliver_signal', H.wrap(function(keys, args)
  local prefix, core, u = H.exec_keys(keys)
  H.argc(args, 8)
  local w = H.str(args[1], 'waitpoint_id')
  local name = H.str(args[2], 'name')
  local payload = H.str(args[3], 'payload', true)
  local source = H.str(args[4], 'source', true)
  local idem = H.str(args[5], 'idempotency_key', true)
  local maxs = H.int(args[6], 'max_signals', 1, H.MAX_INT)
  local stp = H.str(args[7], 'traceparent', true)
  local sts = H.str(args[8], 'tracestate', true)
  local r = H.load(core, H.F_SUSP)
  if r == nil then H.raise('NOT_FOUND', 'no such execution') end
  local etp = redis.call('HMGET', core, 'tp', 'ts')
  local wp = H.wp_load(core, w)
  if wp == nil then H.raise('NOT_FOUND', 'no such waitpoint', 'waitpoint_id', w) end
  local now = H.now()
  local dkey = H.k_sigkeys(core)
  if idem ~= '' then
    local first = redis.call('HGET', dkey, w .. '|' .. idem)
    if first then return { 1, 'OK', 'duplicate', first, etp[1] or '', etp[2] or '' } end
  end
  local st = H.wp_state(wp, r, now)
  if st ~= 'pending' and st ~= 'active' then
    H.raise('WAITPOINT_CLOSED', 'waitpoint ' .. w .. ' is ' .. st, 'state', st, 'execution_state', r.pstate or '')
  end
  if H.n(r.sigs) >= maxs then H.limit('signals_per_execution', maxs, H.n(r.sigs) + 1) end
  local sid = redis.call('XADD', H.k_signals(core), '*', 'w', w, 'n', name, 'p', payload, 's', source,
    'a', H.s(H.n(r.aidx)), 'k', idem, 'tp', stp, 'ts', sts)
  redis.call('HINCRBY', core, 'sigs', 1)
  redis.call('HINCRBY', H.k_wp(core, w), 'signals', 1)
  if idem ~= '' then redis.call('HSET', dkey, w .. '|' .. idem, sid) end
  local effect = 'accepted'
  if st == 'active' and r.phase == 'suspended' then
    if H.cond_apply(r, sid, name) then
      H.resume(prefix, u, core, r, 'signal', r.s_sigs, now)
      effect = 'triggered_resume'
    else
      redis.call('HSET', core, 's_seen', r.s_seen or '', 's_got', H.s(H.n(r.s_got)), 's_sigs', r.s_sigs or '')
    end
  end
  return { 1, 'OK', effect, sid, etp[1] or '', etp[2] or '' }
end))
