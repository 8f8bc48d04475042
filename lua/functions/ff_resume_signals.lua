--[[ ff_resume_signals (no-writes) — the signals that satisfied the current attempt's last resume
(or already_satisfied suspend), for the lease holder (fenced). Empty when the attempt was not
resumed by signals (a new attempt, an operator or timeout resume).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id.
Reply: {1, "OK", count N, then per signal: signal id, waitpoint id, name, payload (bytes), source,
  sender traceparent, sender tracestate}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE. ]]
redis.register_function {
  function_name = 'ff_resume_signals',
  flags = { 'no-writes' },
  callback = H.wrap(function(keys, args)
    local _, core = H.exec_keys(keys)
    H.argc(args, 3)
    local lid, epoch, aid = H.fence_args(args, 1)
    local r = H.load(core, H.F_FENCE)
    H.fence(r, lid, epoch, aid)
    local v = redis.call('HMGET', core, 'raidx', 'rsigs')
    local out = { 1, 'OK', 0 }
    if v[1] == false or H.n(v[1]) ~= H.n(r.aidx) or not v[2] or v[2] == '' then return out end
    local skey = H.k_signals(core)
    for sid in string.gmatch(v[2], '[^,]+') do
      local e = redis.call('XRANGE', skey, sid, sid)
      if e[1] then
        local f = {}
        local raw = e[1][2]
        for j = 1, #raw, 2 do f[raw[j]] = raw[j + 1] end
        out[3] = out[3] + 1
        H.push(out, sid, f.w or '', f.n or '', f.p or '', f.s or '', f.tp or '', f.ts or '')
      end
    end
    return out
  end),
}
