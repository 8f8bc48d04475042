--[[ ff_promote_delayed — delayed-promotion scanner step for one partition.
Takes up to `batch` entries of the delayed zset due by now; each still-delayed execution becomes
eligible with its ORIGINAL score (it keeps its place in line): eligible_now / waiting_for_worker /
pstate waiting, attempt state KEPT (an interrupted attempt resumes; a pending one starts). One wake
per queue. Stale entries are removed.
KEYS: [1] partition prefix `ff:{p:N}:`.
ARGV: [1] batch (1..10000).
Reply: {1, "OK", executions promoted, more (1 when the batch was full)}.
Errors: INVALID_ARGUMENT. ]]
redis.register_function('ff_promote_delayed', H.wrap(function(keys, args)
  local prefix = H.prefix(keys[1])
  H.argc(args, 1)
  local batch = H.int(args[1], 'batch', 1, 10000)
  local now = H.now()
  local dkey = H.k_delayed(prefix)
  local due = redis.call('ZRANGEBYSCORE', dkey, '-inf', now, 'LIMIT', 0, batch)
  local wakes = {}
  local done = 0
  for i = 1, #due do
    local u = due[i]
    local core = H.k_core(prefix, u)
    local v = redis.call('HMGET', core, 'phase', 'elig', 'astate', 'ns', 'lane', 'score')
    redis.call('ZREM', dkey, u)
    if v[1] == 'runnable' and v[2] == 'delayed' then
      done = done + 1
      H.sv_waiting(core, v[3])
      H.to_eligible(prefix, u, v[4], v[5], v[6], wakes)
    end
  end
  H.wake_flush(prefix, wakes)
  return { 1, 'OK', done, #due == batch and 1 or 0 }
end))
