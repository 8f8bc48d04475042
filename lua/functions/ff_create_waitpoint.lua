--[[ ff_create_waitpoint — the holder creates a PENDING waitpoint for its current attempt (fenced),
before suspending: signals delivered to it are stored (buffered) and counted by the attempt's next
ff_suspend. It expires at `expires at` (signals are then refused) and closes when the attempt ends.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] waitpoint id, [5] waitpoint key ("" =
  none; else unique among the attempt's open waitpoints), [6] expires at (Unix ms, > now),
  [7] most waitpoints per execution.
Reply: {1, "OK"}.
Errors: INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE,
  WAITPOINT_EXISTS, LIMIT_EXCEEDED (limit waitpoints_per_execution). ]]
redis.register_function('ff_create_waitpoint', H.wrap(function(keys, args)
  local _, core = H.exec_keys(keys)
  H.argc(args, 7)
  local lid, epoch, aid = H.fence_args(args, 1)
  local w = H.str(args[4], 'waitpoint_id')
  local wkey = H.str(args[5], 'waitpoint_key', true)
  local expires = H.int(args[6], 'expires_at', 1, H.MAX_INT)
  local maxw = H.int(args[7], 'max_waitpoints', 1, H.MAX_INT)
  local r = H.load(core, H.F_FENCE)
  H.fence(r, lid, epoch, aid)
  local now = H.now()
  if expires <= now then H.invalid('expires_at', args[6]) end
  local wps = redis.call('ZRANGE', H.k_wps(core), 0, -1)
  if #wps >= maxw then H.limit('waitpoints_per_execution', maxw, #wps + 1) end
  if wkey ~= '' then
    for i = 1, #wps do
      local wp = H.wp_load(core, wps[i])
      local st = wp and H.wp_state(wp, r, now)
      if (st == 'pending' or st == 'active') and wp.key == wkey then
        H.raise('WAITPOINT_EXISTS', 'an open waitpoint of this attempt has key ' .. wkey, 'waitpoint_key', wkey)
      end
    end
  end
  redis.call('HSET', H.k_wp(core, w), 'id', w, 'key', wkey, 'state', 'pending', 'aidx', H.s(H.n(r.aidx)),
    'created', now, 'expires', expires, 'signals', 0)
  redis.call('ZADD', H.k_wps(core), now, w)
  return { 1, 'OK' }
end))
