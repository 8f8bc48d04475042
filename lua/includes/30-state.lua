-- State vectors, fencing and index moves shared by the transitions.

-- Writes the whole state vector plus extra field/value pairs in ONE HSET (the record goes first).
function H.set_state(core, phase, own, elig, block, outcome, astate, pstate, extra)
  local cmd = { 'HSET', core, 'phase', phase, 'own', own, 'elig', elig, 'block', block,
    'outcome', outcome, 'astate', astate, 'pstate', pstate }
  if extra then
    for i = 1, #extra do cmd[#cmd + 1] = extra[i] end
  end
  redis.call(unpack(cmd))
end

-- Named vectors. Runnable ones take the attempt state (it says what the next claim does).
function H.sv_waiting(core, astate, extra)
  H.set_state(core, 'runnable', 'unowned', 'eligible_now', 'waiting_for_worker', 'none', astate, 'waiting', extra)
end
function H.sv_delayed(core, block, astate, extra)
  H.set_state(core, 'runnable', 'unowned', 'delayed', block, 'none', astate, 'delayed', extra)
end
-- outcome: success|failed|cancelled|expired; pstate: completed|failed|cancelled|expired. Ends the
-- lease (`ended` = now, `lid` and `lexp` cleared) and files the execution (uuid u) under its end
-- time for the retention scanner (ff_purge_terminal).
function H.sv_terminal(prefix, u, core, now, outcome, pstate, extra)
  local fields = { 'ended', now, 'lid', '', 'lexp', 0 }
  for i = 1, #extra do fields[#fields + 1] = extra[i] end
  H.set_state(core, 'terminal', 'unowned', 'not_applicable', 'none', outcome, 'attempt_terminal', pstate, fields)
  redis.call('ZADD', H.k_terminal(prefix), now, u)
end

-- Attempt state of a pending execution from `pend` (why it waits for a new attempt).
function H.pending_astate(pend)
  if pend == 'initial' then return 'pending_first_attempt' end
  return 'pending_retry_attempt'
end

-- Eligible score: priority band first, then creation time.
function H.score(prio, created)
  return (1000 - prio) * H.SCORE_BAND + (created - H.SCORE_EPOCH)
end

-- Wake event: new eligible work at position (score, member u) in queue `NS/L`. The member
-- breaks score ties (time-ordered uuids keep FIFO within a millisecond).
function H.wake(prefix, score, u, queue)
  redis.call('SPUBLISH', H.k_events(prefix), 'w|' .. score .. '|' .. u .. '|' .. queue)
end

-- ZADD to the queue's eligible zset (score = the record's original `score` string) and list the
-- queue in the partition's lane set (the safety scan prunes it once empty); wake unless `acc` is
-- given (scanners batch their wakes: lowest score per queue, published by H.wake_flush). The one
-- way into an eligible zset.
function H.to_eligible(prefix, u, ns, lane, score, acc)
  redis.call('ZADD', H.k_eligible(prefix, ns, lane), score, u)
  local q = H.queue(ns, lane)
  redis.call('SADD', H.k_lanes(prefix), q)
  if acc then
    local cur = acc[q]
    if cur == nil or tonumber(score) < tonumber(cur[1]) or (tonumber(score) == tonumber(cur[1]) and u < cur[2]) then
      acc[q] = { score, u }
    end
  else
    H.wake(prefix, score, u, q)
  end
end
function H.wake_flush(prefix, acc)
  for q, pos in pairs(acc) do H.wake(prefix, pos[1], pos[2], q) end
end

-- Timeouts entry of an execution that is not running an attempt: its deadline, or none.
function H.timeout_idle(prefix, u, deadline)
  if H.n(deadline) > 0 then
    redis.call('ZADD', H.k_timeouts(prefix), deadline, u)
  else
    redis.call('ZREM', H.k_timeouts(prefix), u)
  end
end

-- Removes an execution from every scheduling index (used by terminal transitions).
function H.unindex(prefix, u, ns, lane)
  if ns and lane then redis.call('ZREM', H.k_eligible(prefix, ns, lane), u) end
  redis.call('ZREM', H.k_delayed(prefix), u)
  redis.call('ZREM', H.k_leases(prefix), u)
  redis.call('ZREM', H.k_timeouts(prefix), u)
end

-- Fields read by the fenced transitions (one HMGET).
H.F = { 'phase', 'own', 'lid', 'epoch', 'aid', 'aidx', 'acount', 'pstate', 'outcome', 'astate', 'pend',
  'ns', 'lane', 'score', 'deadline', 'atimeout', 'retries', 'reclaims', 'resumed', 'started', 'delay_until',
  'rp_max', 'rp_kind', 'rp_init', 'rp_maxd', 'rp_mult', 'rp_jit', 'rp_cats', 'max_reclaims', 'sess', 'elid' }

-- The fields the fence and replay reconciliation read, plus the current attempt index (a short
-- read for the hot fenced functions: HMGET on a listpack record costs per field asked).
H.F_FENCE = { 'phase', 'own', 'lid', 'epoch', 'aid', 'aidx', 'pstate', 'outcome', 'pend', 'elid' }

-- The record's fields (`fields`, default H.F) as a table (name -> value or false); nil when there
-- is no record. Every list starts with `phase`, which every record has.
function H.load(core, fields)
  fields = fields or H.F
  local v = redis.call('HMGET', core, unpack(fields))
  if not v[1] then return nil end
  local r = {}
  for i = 1, #fields do r[fields[i]] = v[i] end
  return r
end

-- Fence arguments (lease id, epoch, attempt id) at ARGV[i..i+2].
function H.fence_args(args, i)
  return H.str(args[i], 'lease_id'), H.int(args[i + 1], 'lease_epoch', 0, H.MAX_INT), H.str(args[i + 2], 'attempt_id')
end

-- Checks a fence against a loaded record (nil = no record). Returns nil when it holds the lease,
-- else an error code and detail pairs. An expired lease that the scanner has not requeued yet
-- still matches: the fence, not the clock, decides.
function H.fence_code(r, lid, epoch, aid)
  if r == nil then return 'NOT_FOUND', {} end
  local detail = { 'state', r.pstate or '', 'outcome', r.outcome or '', 'epoch', H.s(H.n(r.epoch)), 'attempt_id', r.aid or '' }
  if r.phase ~= 'active' or r.own ~= 'leased' then
    if H.n(r.epoch) == epoch and r.aid == aid and r.phase == 'runnable' and r.pend == 'reclaim' then
      return 'LEASE_EXPIRED', detail
    end
    return 'EXECUTION_NOT_ACTIVE', detail
  end
  if r.lid ~= lid or H.n(r.epoch) ~= epoch or r.aid ~= aid then return 'STALE_LEASE', detail end
  return nil
end

-- Same, raising the error.
function H.fence(r, lid, epoch, aid)
  local code, detail = H.fence_code(r, lid, epoch, aid)
  if code then H.raise(code, 'fence rejected: ' .. code, unpack(detail)) end
end

-- Raises EXECUTION_NOT_ACTIVE describing the record (a terminal outcome raced in).
function H.not_active(r, why)
  H.raise('EXECUTION_NOT_ACTIVE', why, 'state', r.pstate or '', 'outcome', r.outcome or '',
    'epoch', H.s(H.n(r.epoch)), 'attempt_id', r.aid or '')
end

-- True when (epoch, aid) is the record's current attempt.
function H.same_attempt(r, epoch, aid)
  return H.n(r.epoch) == epoch and r.aid == aid
end

-- True when the full fence (lease id, epoch, attempt id) is the one whose settle (complete, fail,
-- holder cancel) ended the current attempt: they record that lease id as `elid`. A replay after a
-- lost reply reconciles only then; a forged lease id with the right epoch and attempt does not.
function H.settled_by(r, lid, epoch, aid)
  return H.same_attempt(r, epoch, aid) and r.elid == lid
end

-- State of the record's current attempt record (false when none).
function H.attempt_state(core, r)
  local idx = H.n(r.aidx)
  if idx < 0 or r.aidx == false then return false end
  return redis.call('HGET', H.k_attempt(core, idx), 'state')
end

-- Ends the current attempt record if it is still open (started, interrupted or suspended).
function H.end_open_attempt(core, r, state, now)
  local st = H.attempt_state(core, r)
  if st == 'started' or st == 'interrupted' or st == 'suspended' then
    redis.call('HSET', H.k_attempt(core, H.n(r.aidx)), 'state', state, 'ended', now)
  end
end
