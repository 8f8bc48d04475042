--[[ ff_describe (no-writes) — a snapshot of the execution record, its tags and its waitpoints
(never a token: tokens are not stored). A waitpoint's state is its effective state (closed once
the execution ended or its attempt is over, expired past a pending waitpoint's expiry).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: none.
Reply: {1, "OK", {record field, value, ...}, {tag name, value, ...}, {per waitpoint: id, key,
  state, attempt index, created (Unix ms), expires (Unix ms, 0 = none), signals received, closed
  at (Unix ms), close reason}}.
Errors: INVALID_ARGUMENT, NOT_FOUND. ]]
redis.register_function {
  function_name = 'ff_describe',
  flags = { 'no-writes' },
  callback = H.wrap(function(keys, args)
    local _, core = H.exec_keys(keys)
    H.argc(args, 0)
    local rec = redis.call('HGETALL', core)
    if #rec == 0 then H.raise('NOT_FOUND', 'no such execution') end
    local wps = {}
    local ids = redis.call('ZRANGE', H.k_wps(core), 0, -1)
    if #ids > 0 then
      local r = H.load(core, { 'phase', 'aidx' })
      local now = H.now()
      for i = 1, #ids do
        local v = redis.call('HMGET', H.k_wp(core, ids[i]), 'key', 'state', 'aidx', 'created', 'expires', 'signals', 'closed_at', 'reason')
        if v[2] then
          local n = #wps
          wps[n + 1] = ids[i]
          wps[n + 2] = v[1] or ''
          wps[n + 3] = H.wp_state({ state = v[2], aidx = v[3], expires = v[5] }, r, now)
          wps[n + 4] = v[3] or '0'
          wps[n + 5] = v[4] or '0'
          wps[n + 6] = v[5] or '0'
          wps[n + 7] = v[6] or '0'
          wps[n + 8] = v[7] or '0'
          wps[n + 9] = v[8] or ''
        end
      end
    end
    return { 1, 'OK', rec, redis.call('HGETALL', core .. ':tags'), wps }
  end),
}
