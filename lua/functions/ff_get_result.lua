--[[ ff_get_result (no-writes) — public state, result payload and failure of an execution.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: none.
Reply: {1, "OK", public state, has result (0|1), result (bytes) or nil, failure reason, failure category}.
Errors: INVALID_ARGUMENT, NOT_FOUND. ]]
redis.register_function {
  function_name = 'ff_get_result',
  flags = { 'no-writes' },
  callback = H.wrap(function(keys, args)
    local _, core = H.exec_keys(keys)
    H.argc(args, 0)
    local v = redis.call('HMGET', core, 'pstate', 'has_result', 'fail_reason', 'fail_cat')
    if not v[1] then H.raise('NOT_FOUND', 'no such execution') end
    local has = v[2] == '1' and 1 or 0
    local result = false
    if has == 1 then result = redis.call('GET', core .. ':out') or '' end
    return { 1, 'OK', v[1], has, result, v[3] or '', v[4] or '' }
  end),
}
