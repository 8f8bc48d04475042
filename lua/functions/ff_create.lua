--[[ ff_create — creates one execution (waiting, or delayed when delay_until is in the future).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key `ff:{p:N}:e:U` (U = the new uuid).
ARGV: [1] namespace, [2] lane, [3] kind, [4] input (bytes), [5] priority (-1000..1000),
  [6] delay_until (Unix ms, 0 = now), [7] deadline (Unix ms, 0 = none), [8] attempt timeout (ms, 0 = none),
  [9] max_reclaims, [10] required capabilities (sorted CSV), [11] retry max retries,
  [12] retry backoff (fixed|exponential), [13] retry initial delay (ms), [14] retry max delay (ms),
  [15] retry multiplier, [16] retry jitter (0..1), [17] retryable categories (CSV, empty = all),
  [18] idempotency key (empty = none), [19] traceparent, [20] tracestate, [21] tag count T,
  [22..21+2T] tag name, tag value pairs, [22+2T] frame stream mode (durable|summary|best_effort),
  [23+2T] best-effort stream TTL (ms, 1..2^53-1), [24+2T] idempotency window (ms, 0 = 24 h,
  else 1000..86400000).
Reply: {1, "OK", execution id, duplicate (0|1), public state}. With an idempotency key that is
  already taken (within its window): the existing id, duplicate = 1, its current state, and no writes.
Errors: INVALID_ARGUMENT (detail `field`). ]]
redis.register_function('ff_create', H.wrap(function(keys, args)
  local prefix, core, u, eid = H.exec_keys(keys)
  local ns = H.str(args[1], 'namespace')
  if string.find(ns, '[/:]') then H.invalid('namespace', ns) end
  local lane = H.str(args[2], 'lane')
  local kind = H.str(args[3], 'kind', true)
  local input = H.str(args[4], 'input', true)
  local prio = H.int(args[5], 'priority', -1000, 1000)
  local delay_until = H.int(args[6], 'delay_until', 0, H.MAX_INT)
  local deadline = H.int(args[7], 'deadline', 0, H.MAX_INT)
  local atimeout = H.int(args[8], 'attempt_timeout_ms', 0, H.MAX_INT)
  local max_reclaims = H.int(args[9], 'max_reclaims', 0, H.MAX_INT)
  local caps = H.str(args[10], 'capabilities', true)
  local rp_max = H.int(args[11], 'retry_max', 0, H.MAX_INT)
  local rp_kind = H.enum(args[12], 'retry_backoff', { 'fixed', 'exponential' })
  local rp_init = H.int(args[13], 'retry_initial_delay_ms', 0, H.MAX_INT)
  local rp_maxd = H.int(args[14], 'retry_max_delay_ms', 0, H.MAX_INT)
  local rp_mult = H.num(args[15], 'retry_multiplier', 0, 1000000)
  local rp_jit = H.num(args[16], 'retry_jitter', 0, 1)
  local rp_cats = H.str(args[17], 'retryable_categories', true)
  local idem = H.str(args[18], 'idempotency_key', true)
  local tp = H.str(args[19], 'traceparent', true)
  local ts = H.str(args[20], 'tracestate', true)
  local ntags = H.int(args[21], 'tag_count', 0, 100000)
  H.argc(args, 24 + 2 * ntags)
  for i = 22, 21 + 2 * ntags do H.str(args[i], 'tag', true) end
  local smode = H.enum(args[22 + 2 * ntags], 'stream_mode', H.FRAME_MODES)
  local sttl = H.int(args[23 + 2 * ntags], 'stream_ttl_ms', 1, H.MAX_INT)
  local idem_ttl = H.int(args[24 + 2 * ntags], 'idempotency_ttl_ms', 0, H.IDEM_TTL_MS)
  if idem_ttl == 0 then idem_ttl = H.IDEM_TTL_MS elseif idem_ttl < 1000 then H.invalid('idempotency_ttl_ms', idem_ttl) end

  local idem_key = idem ~= '' and H.k_idem(prefix, ns, idem) or nil
  if idem_key then
    local existing = redis.call('GET', idem_key)
    if existing then
      local ex_u = string.match(existing, ':(.+)$')
      local pstate = ex_u and redis.call('HGET', H.k_core(prefix, ex_u), 'pstate')
      if pstate then return { 1, 'OK', existing, 1, pstate } end
    end
  end

  local now = H.now()
  local score = H.s(H.score(prio, now))
  local delayed = delay_until > now
  local pstate = delayed and 'delayed' or 'waiting'
  -- The record first (identity, policy, state vector), then the rest. Fields whose value would be
  -- the default (0 or "") are left out: every reader treats a missing field as its default
  -- (H.n / `or ''` here, the same in gateway/src/engine/fcall/*), and a listpack hash costs per
  -- field on every later HSET/HMGET, so a lean record makes every transition cheaper.
  local extra = { 'id', eid, 'ns', ns, 'lane', lane, 'kind', kind, 'prio', prio, 'score', score,
    'created', now, 'aidx', -1, 'pend', 'initial', 'max_reclaims', max_reclaims }
  local function opt(name, value, default)
    if value ~= default then extra[#extra + 1] = name; extra[#extra + 1] = value end
  end
  opt('caps', caps, '')
  opt('delay_until', delay_until, 0)
  opt('deadline', deadline, 0)
  opt('atimeout', atimeout, 0)
  if rp_max > 0 then
    for _, kv in ipairs({ { 'rp_max', rp_max }, { 'rp_kind', rp_kind }, { 'rp_init', rp_init },
      { 'rp_maxd', rp_maxd }, { 'rp_mult', args[15] }, { 'rp_jit', args[16] }, { 'rp_cats', rp_cats } }) do
      extra[#extra + 1] = kv[1]; extra[#extra + 1] = kv[2]
    end
  end
  opt('tp', tp, '')
  opt('ts', ts, '')
  opt('smode', smode, 'durable')
  if smode == 'best_effort' then opt('sttl', sttl, nil) end
  if delayed then
    H.sv_delayed(core, 'waiting_for_delay', 'pending_first_attempt', extra)
  else
    H.sv_waiting(core, 'pending_first_attempt', extra)
  end
  redis.call('SET', core .. ':in', input)
  if ntags > 0 then
    redis.call('HSET', core .. ':tags', unpack(args, 22, 21 + 2 * ntags))
  end
  if delayed then
    redis.call('ZADD', H.k_delayed(prefix), delay_until, u)
  else
    H.to_eligible(prefix, u, ns, lane, score)
  end
  if deadline > 0 then redis.call('ZADD', H.k_timeouts(prefix), deadline, u) end
  if idem_key then redis.call('SET', idem_key, eid, 'PX', idem_ttl) end
  return { 1, 'OK', eid, 0, pstate }
end))
