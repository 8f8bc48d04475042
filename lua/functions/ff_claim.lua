--[[ ff_claim — grants up to `count` eligible executions of one queue (namespace + lane) in one
partition (the hot path). Scans the queue's eligible zset from the head (at most count*4+16 entries, score <= max_score),
skips executions whose required capabilities are not a subset of the claimant's, and grants the
rest: an execution whose attempt was interrupted (delay, suspension) RESUMES that attempt (same index and id);
any other starts a NEW attempt (index = attempt count; type initial/retry/reclaim from `pend`).
Every grant: epoch+1, new lease id, lease expiry = now + ttl, state active/leased.
KEYS: [1] partition prefix `ff:{p:N}:`.
ARGV: [1] namespace, [2] lane, [3] count (1..1000), [4] claimant capabilities (sorted CSV), [5] max score
  ("+inf" or a number), [6] session id, [7] worker id, [8] worker instance id, [9] lease ttl (ms),
  [10..9+count] lease ids (one per possible grant), [10+count..9+2*count] attempt ids,
  [10+2*count] share count S (0..count), then S shares of 4: slots, session id, worker id,
  worker instance id. With S > 0 the claim serves several sessions of one capability set: grants go
  to the shares in order (the first `slots` grants to the first share, ...), each recorded under its
  own session and worker; the slots must add up to count. With S = 0 every grant is [6..8]'s.
Reply: {1, "OK", head score after the claim (string) or nil, unmatched remain (0|1), grant count G,
(last element: the head's member uuid, or nil)
  then per grant: execution id, lease id, lease epoch, attempt id, attempt index, resumed (0 for a
  new attempt, else the resume reason: delay|signal|timeout|operator),
  input (bytes), kind, lane, namespace, priority, retry count, lease expiry (Unix ms),
  created (Unix ms), deadline (Unix ms, 0 = none), traceparent, tracestate, tag count T,
  T name/value pairs}.
Errors: INVALID_ARGUMENT (detail `field`). ]]
redis.register_function('ff_claim', H.wrap(function(keys, args)
  local prefix = H.prefix(keys[1])
  local ns = H.str(args[1], 'namespace')
  local lane = H.str(args[2], 'lane')
  local count = H.int(args[3], 'count', 1, 1000)
  local have_csv = H.str(args[4], 'capabilities', true)
  local max_score = args[5]
  if max_score ~= '+inf' then H.num(max_score, 'max_score', -H.MAX_INT, H.MAX_INT) end
  local sess = H.str(args[6], 'session_id')
  local wid = H.str(args[7], 'worker_id')
  local winst = H.str(args[8], 'worker_instance_id')
  local ttl = H.int(args[9], 'lease_ttl_ms', 1, H.MAX_INT)
  for i = 10, 9 + 2 * count do H.str(args[i], i <= 9 + count and 'lease_id' or 'attempt_id') end
  -- owner[g]: {session, worker, instance} of grant g
  local owner = {}
  local shares = H.int(args[10 + 2 * count], 'share_count', 0, count)
  H.argc(args, 10 + 2 * count + 4 * shares)
  for s = 1, shares do
    local at = 10 + 2 * count + 4 * (s - 1)
    local slots = H.int(args[at + 1], 'share_slots', 1, count - #owner)
    local who = { H.str(args[at + 2], 'share_session_id'), H.str(args[at + 3], 'share_worker_id'), H.str(args[at + 4], 'share_worker_instance_id') }
    for _ = 1, slots do owner[#owner + 1] = who end
  end
  if shares > 0 and #owner ~= count then H.invalid('share_slots', 'add up to ' .. #owner .. ', not count ' .. count) end

  local ekey = H.k_eligible(prefix, ns, lane)
  local lkey = H.k_leases(prefix)
  local tkey = H.k_timeouts(prefix)
  local part = string.match(prefix, '{p:(%d+)}')
  local cands = redis.call('ZRANGEBYSCORE', ekey, '-inf', max_score, 'LIMIT', 0, count * 4 + 16)
  local now = H.now()
  local lexp = now + ttl
  local have = nil
  local unmatched = 0
  local granted = 0
  local out = { 1, 'OK', false, 0, 0 }
  for c = 1, #cands do
    if granted >= count then break end
    local u = cands[c]
    local core = prefix .. 'e:' .. u
    local f = redis.call('HMGET', core, 'phase', 'caps', 'astate', 'aidx', 'acount', 'aid', 'epoch', 'pend',
      'started', 'atimeout', 'deadline', 'ns', 'lane', 'kind', 'prio', 'retries', 'created', 'tp', 'ts', 'rreason')
    if f[1] ~= 'runnable' then
      redis.call('ZREM', ekey, u) -- stale index entry
    else
      local ok = true
      if f[2] and f[2] ~= '' then
        have = have or H.csv_set(have_csv)
        ok = H.csv_subset(f[2], have)
      end
      if not ok then
        unmatched = 1
      else
        granted = granted + 1
        local who = owner[granted]
        local gsess, gwid, gwinst = sess, wid, winst
        if who then gsess, gwid, gwinst = who[1], who[2], who[3] end
        local lid = args[9 + granted]
        local epoch = H.n(f[7]) + 1
        local resumed = f[3] == 'attempt_interrupted'
        local aidx, aid, acount = H.n(f[4]), f[6], H.n(f[5])
        if resumed then
          redis.call('HSET', H.k_attempt(core, aidx), 'state', 'started', 'resumed', 1,
            'lease_epoch', epoch, 'worker_instance', gwinst)
        else
          aidx, aid, acount = acount, args[9 + count + granted], acount + 1
          redis.call('HSET', H.k_attempt(core, aidx), 'id', aid, 'type', f[8] or 'initial', 'state', 'started',
            'lease_epoch', epoch, 'worker_instance', gwinst, 'started', now, 'ended', 0, 'resumed', 0,
            'fail_reason', '', 'fail_cat', '')
        end
        local started = H.n(f[9]) > 0 and f[9] or now
        H.set_state(core, 'active', 'leased', 'not_applicable', 'none', 'none', 'running_attempt', 'active',
          { 'aidx', aidx, 'acount', acount, 'aid', aid, 'lid', lid, 'epoch', epoch, 'lexp', lexp,
            'sess', gsess, 'wid', gwid, 'winst', gwinst, 'started', started, 'astarted', now,
            'resumed', resumed and 1 or 0 })
        redis.call('ZREM', ekey, u)
        redis.call('ZADD', lkey, lexp, u)
        local atimeout = H.n(f[10])
        local deadline = H.n(f[11])
        if atimeout > 0 then
          local due = now + atimeout
          if deadline > 0 and deadline < due then due = deadline end
          redis.call('ZADD', tkey, due, u)
        end
        local tags = redis.call('HGETALL', core .. ':tags')
        -- the grant's fields, in the order of the header (decoded by name in fcall/claim.ts)
        H.push(out, part .. ':' .. u, lid, epoch, aid, aidx, resumed and (f[20] or 'delay') or 0,
          redis.call('GET', core .. ':in') or '', f[14] or '', f[13] or lane, f[12] or ns, f[15] or '0',
          f[16] or '0', lexp, f[17] or '0', f[11] or '0', f[18] or '', f[19] or '', #tags / 2)
        H.push_all(out, tags)
      end
    end
  end
  local head = redis.call('ZRANGE', ekey, 0, 0, 'WITHSCORES')
  out[3] = head[2] or false
  out[4] = unmatched
  out[5] = granted
  out[#out + 1] = head[1] or false
  return out
end))
