--[[ ff_describe (no-writes) — a snapshot of the execution record and its tags.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: none.
Reply: {1, "OK", {record field, value, ...}, {tag name, value, ...}}.
Errors: INVALID_ARGUMENT, NOT_FOUND. ]]
redis.register_function {
  function_name = 'ff_describe',
  flags = { 'no-writes' },
  callback = H.wrap(function(keys, args)
    local _, core = H.exec_keys(keys)
    H.argc(args, 0)
    local rec = redis.call('HGETALL', core)
    if #rec == 0 then H.raise('NOT_FOUND', 'no such execution') end
    return { 1, 'OK', rec, redis.call('HGETALL', core .. ':tags') }
  end),
}
