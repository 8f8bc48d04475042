-- Suspension, waitpoints and signals (ff_suspend, ff_create_waitpoint, ff_deliver_signal,
-- ff_resume, ff_expire_suspensions, ff_resume_signals). Tokens are minted and checked by the
-- gateway (HMAC, gateway/src/signals/); nothing here ever sees a secret.
--
-- Per execution (record key `core`): `core:wp:<W>` waitpoint hash, `core:wps` zset of waitpoint ids
-- by creation time, `core:sig` signal stream (entry id = signal id), `core:sigk` idempotency hash
-- (`<W>|<key>` -> signal id). Per partition: `suspended` zset (score = suspension timeout, Unix ms).

function H.k_wp(core, w) return core .. ':wp:' .. w end
function H.k_wps(core) return core .. ':wps' end
function H.k_signals(core) return core .. ':sig' end
function H.k_sigkeys(core) return core .. ':sigk' end
function H.k_suspended(prefix) return prefix .. 'suspended' end

-- The suspension's record fields: condition (mode any|all|count, names CSV ("" = any name), count
-- n), progress (names seen CSV, matching signals counted, matching signal ids CSV), waitpoint ids
-- CSV, reason code, suspended-at and timeout (Unix ms, 0 = none), timeout behaviour.
H.F_SUSP = { 'phase', 'pstate', 'aidx', 'ns', 'lane', 'score', 'deadline', 'sigs', 'outcome', 'aid', 'epoch', 'fopen',
  's_mode', 's_names', 's_n', 's_seen', 's_got', 's_sigs', 's_wps', 's_due', 's_on' }

-- True when `name` is an item of `csv`.
function H.csv_has(csv, name)
  return string.find(',' .. (csv or '') .. ',', ',' .. name .. ',', 1, true) ~= nil
end

-- `csv` with `item` appended.
function H.csv_add(csv, item)
  if csv == nil or csv == false or csv == '' then return item end
  return csv .. ',' .. item
end

-- Effective state of waitpoint `wp` ({state, aidx, expires}) of record `r` at `now`: closed once
-- closed or the execution ended; a pending waitpoint is `expired` past its expiry and closed once
-- its attempt is no longer the current one.
function H.wp_state(wp, r, now)
  if wp.state == 'closed' or r.phase == 'terminal' then return 'closed' end
  if wp.state == 'pending' then
    if H.n(wp.expires) > 0 and H.n(wp.expires) <= now then return 'expired' end
    if H.n(wp.aidx) ~= H.n(r.aidx) then return 'closed' end
  end
  return wp.state
end

function H.wp_load(core, w)
  local v = redis.call('HMGET', H.k_wp(core, w), 'state', 'aidx', 'expires', 'key', 'created')
  if not v[1] then return nil end
  return { id = w, state = v[1], aidx = v[2], expires = v[3], key = v[4], created = v[5] }
end

-- Applies the signal (id sid, name) to the condition fields of `c` (mutated); true once satisfied.
function H.cond_apply(c, sid, name)
  if c.s_names ~= '' and c.s_names and not H.csv_has(c.s_names, name) then return false end
  c.s_sigs = H.csv_add(c.s_sigs, sid)
  if c.s_mode == 'count' then
    c.s_got = H.n(c.s_got) + 1
    return c.s_got >= H.n(c.s_n)
  end
  if c.s_mode ~= 'all' or not c.s_names or c.s_names == '' then return true end
  if not H.csv_has(c.s_seen, name) then c.s_seen = H.csv_add(c.s_seen, name) end
  for item in string.gmatch(c.s_names, '[^,]+') do
    if not H.csv_has(c.s_seen, item) then return false end
  end
  return true
end

-- Closes the waitpoints named in `csv` (reason: resumed, satisfied, cancelled, timeout, expired, ...).
function H.close_wps(core, csv, reason, now)
  for w in string.gmatch(csv or '', '[^,]+') do
    redis.call('HSET', H.k_wp(core, w), 'state', 'closed', 'closed_at', now, 'reason', reason)
  end
end

-- Suspended -> waiting with its ORIGINAL score (it keeps its place in line) and a wake (or into
-- `acc` for scanners): the suspension's waitpoints close, the record says why it resumed
-- (`rreason` signal|timeout|operator), which signals satisfied it (`rsigs`) and for which attempt
-- (`raidx`). The next claim resumes the same attempt.
function H.resume(prefix, u, core, r, why, sigs, now, acc)
  H.sv_waiting(core, 'attempt_interrupted', { 'rreason', why, 'rsigs', sigs, 'raidx', H.s(H.n(r.aidx)) })
  H.close_wps(core, r.s_wps, why == 'signal' and 'resumed' or why, now)
  redis.call('ZREM', H.k_suspended(prefix), u)
  H.to_eligible(prefix, u, r.ns, r.lane, r.score, acc)
end

-- A suspended execution ends (cancel, deadline, suspension timeout): its waitpoints close and it
-- leaves the suspended index. No-op for any other phase.
function H.end_suspension(prefix, u, core, phase, reason, now)
  if phase ~= 'suspended' then return end
  H.close_wps(core, redis.call('HGET', core, 's_wps'), reason, now)
  redis.call('ZREM', H.k_suspended(prefix), u)
end
