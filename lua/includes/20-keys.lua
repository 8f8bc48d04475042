-- Key names, mirrored from gateway/src/engine/keys.ts. Every key derives from the partition prefix
-- `ff:{p:N}:` so it shares the partition's hash tag (one slot in Cluster).

-- Validates a partition prefix; returns it and the partition number.
function H.prefix(p)
  local n = type(p) == 'string' and string.match(p, '^ff:{p:(%d+)}:$')
  if not n then H.invalid('KEYS prefix', p) end
  return p, n
end

-- Validates an execution record key of partition `prefix`; returns the execution uuid.
function H.uuid_of(prefix, core)
  local head = prefix .. 'e:'
  if type(core) ~= 'string' or string.sub(core, 1, #head) ~= head then H.invalid('KEYS record', core) end
  local u = string.sub(core, #head + 1)
  if u == '' or string.find(u, ':', 1, true) then H.invalid('KEYS record', core) end
  return u
end

-- KEYS = {prefix, record key} of the per-execution functions -> prefix, core key, uuid, execution id.
function H.exec_keys(keys)
  local prefix, n = H.prefix(keys[1])
  local u = H.uuid_of(prefix, keys[2])
  return prefix, keys[2], u, n .. ':' .. u
end

function H.k_core(prefix, u) return prefix .. 'e:' .. u end
function H.k_attempt(core, idx) return core .. ':a:' .. H.s(idx) end
-- Queue of a namespace's lane: `NS/L` (namespaces cannot contain '/' or ':').
function H.queue(ns, lane) return ns .. '/' .. lane end
function H.k_eligible(prefix, ns, lane) return prefix .. 'q:' .. ns .. '/' .. lane .. ':eligible' end
function H.k_lanes(prefix) return prefix .. 'lanes' end
function H.k_delayed(prefix) return prefix .. 'delayed' end
function H.k_leases(prefix) return prefix .. 'leases' end
function H.k_timeouts(prefix) return prefix .. 'timeouts' end
-- Terminal executions by end time (Unix ms): what the retention scanner purges.
function H.k_terminal(prefix) return prefix .. 'terminal' end
function H.k_events(prefix) return prefix .. 'events' end
function H.k_idem(prefix, ns, key) return prefix .. 'idem:' .. ns .. ':' .. key end
-- Execution id "N:U" from a prefix and a uuid.
function H.eid(prefix, u) return string.match(prefix, '{p:(%d+)}') .. ':' .. u end
-- Output frames of attempt `idx` (lua/includes/40-frames.lua): the stream and its meta hash.
function H.k_frames(core, idx) return core .. ':a:' .. idx .. ':frames' end
function H.k_frames_meta(core, idx) return core .. ':a:' .. idx .. ':frames:meta' end
