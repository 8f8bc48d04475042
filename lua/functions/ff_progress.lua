--[[ ff_progress — records progress of the running attempt (fenced).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] percent (0..100), [5] message.
Reply: {1, "OK"}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE. ]]
redis.register_function('ff_progress', H.wrap(function(keys, args)
  local _, core = H.exec_keys(keys)
  H.argc(args, 5)
  local lid, epoch, aid = H.fence_args(args, 1)
  local pct = H.num(args[4], 'percent', 0, 100)
  local msg = H.str(args[5], 'message', true)
  H.fence(H.load(core, H.F_FENCE), lid, epoch, aid)
  redis.call('HSET', core, 'prog_pct', args[4], 'prog_msg', msg)
  return { 1, 'OK' }
end))
