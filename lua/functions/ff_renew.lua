--[[ ff_renew — renews (mode "renew") or adopts (mode "adopt") leases of one partition, in a batch.
Per lease: NOT_FOUND without a record; LEASE_EXPIRED when the lease-expiry scanner already requeued
it (same epoch and attempt); EXECUTION_NOT_ACTIVE when not active/leased; STALE_LEASE when the
lease id, epoch or attempt id differ; else lease expiry = now + ttl, `sess` = session (adopt also
rebinds `wid`/`winst`) and the leases zset is re-scored. An expired lease that the scanner has not
requeued yet is still renewed: the fence decides, not the clock (nobody else can hold it).
KEYS: [1] partition prefix `ff:{p:N}:`, [2..n+1] the record keys of the n leases.
ARGV: [1] mode (renew|adopt), [2] session id, [3] lease ttl (ms), [4] worker id, [5] worker instance
  id (both ignored by renew), then per lease i: [6+3(i-1)] lease id, [7+3(i-1)] lease epoch,
  [8+3(i-1)] attempt id.
Reply: {1, "OK", new lease expiry (Unix ms), then per lease "OK" or its loss code}.
Errors: INVALID_ARGUMENT (detail `field`). ]]
redis.register_function('ff_renew', H.wrap(function(keys, args)
  local prefix = H.prefix(keys[1])
  local mode = H.enum(args[1], 'mode', { 'renew', 'adopt' })
  local sess = H.str(args[2], 'session_id')
  local ttl = H.int(args[3], 'lease_ttl_ms', 1, H.MAX_INT)
  local adopt = mode == 'adopt'
  local wid = H.str(args[4], 'worker_id', not adopt)
  local winst = H.str(args[5], 'worker_instance_id', not adopt)
  local n = #keys - 1
  if n < 1 then H.invalid('KEYS count', #keys) end
  H.argc(args, 5 + 3 * n)
  local fences = {}
  for i = 1, n do
    local lid, epoch, aid = H.fence_args(args, 6 + 3 * (i - 1))
    fences[i] = { H.uuid_of(prefix, keys[i + 1]), lid, epoch, aid }
  end

  local now = H.now()
  local lexp = now + ttl
  local lkey = H.k_leases(prefix)
  local out = { 1, 'OK', lexp }
  for i = 1, n do
    local fc = fences[i]
    local core = keys[i + 1]
    local v = redis.call('HMGET', core, 'phase', 'own', 'lid', 'epoch', 'aid', 'pend', 'pstate', 'outcome')
    local r = nil
    if v[1] then
      r = { phase = v[1], own = v[2], lid = v[3], epoch = v[4], aid = v[5], pend = v[6], pstate = v[7], outcome = v[8] }
    end
    local code = H.fence_code(r, fc[2], fc[3], fc[4])
    if code then
      out[#out + 1] = code
    else
      if adopt then
        redis.call('HSET', core, 'lexp', lexp, 'sess', sess, 'wid', wid, 'winst', winst)
      else
        redis.call('HSET', core, 'lexp', lexp, 'sess', sess)
      end
      redis.call('ZADD', lkey, lexp, fc[1])
      out[#out + 1] = 'OK'
    end
  end
  return out
end))
