--[[ ff_lane_heads — safety-net scan: the eligible head score of every queue with eligible work in
one partition (SMEMBERS lanes + ZRANGE 0 0 WITHSCORES each). A queue with nothing eligible left is
removed from the lane set (H.to_eligible adds it back with its next eligible execution), so one-off
lanes do not slow every later scan.
KEYS: [1] partition prefix `ff:{p:N}:`.
ARGV: none.
Reply: {1, "OK", queue `NS/L`, head score, head member uuid, ...} (queues without eligible work are left out).
Errors: INVALID_ARGUMENT. ]]
redis.register_function {
  function_name = 'ff_lane_heads',
  callback = H.wrap(function(keys, args)
    local prefix = H.prefix(keys[1])
    H.argc(args, 0)
    local out = { 1, 'OK' }
    local queues = redis.call('SMEMBERS', H.k_lanes(prefix))
    for i = 1, #queues do
      local head = redis.call('ZRANGE', prefix .. 'q:' .. queues[i] .. ':eligible', 0, 0, 'WITHSCORES')
      if head[2] then
        out[#out + 1] = queues[i]
        out[#out + 1] = head[2]
        out[#out + 1] = head[1]
      else
        redis.call('SREM', H.k_lanes(prefix), queues[i])
      end
    end
    return out
  end),
}
