--[[ ff_resume — an operator resumes a suspended execution without a signal (unfenced). Its
waitpoints close (operator); it becomes waiting with its original score (a wake is published)
and the next claim resumes the same attempt with resume reason `operator`.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: none.
Reply: {1, "OK", public state}.
Errors: INVALID_ARGUMENT, NOT_FOUND, EXECUTION_NOT_SUSPENDED (detail `state`). ]]
redis.register_function('ff_resume', H.wrap(function(keys, args)
  local prefix, core, u = H.exec_keys(keys)
  H.argc(args, 0)
  local r = H.load(core, H.F_SUSP)
  if r == nil then H.raise('NOT_FOUND', 'no such execution') end
  if r.phase ~= 'suspended' then
    H.raise('EXECUTION_NOT_SUSPENDED', 'the execution is ' .. (r.pstate or ''), 'state', r.pstate or '')
  end
  H.resume(prefix, u, core, r, 'operator', '', H.now())
  return { 1, 'OK', 'waiting' }
end))
