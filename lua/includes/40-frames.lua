-- Output frames: one Valkey stream per attempt (`<record>:a:<I>:frames`) and its meta hash
-- (`<record>:a:<I>:frames:meta`). The record field `fopen` names the attempt whose stream is open:
-- the first append sets it, the close clears it. Transitions read it with the record (H.F below)
-- and close only when it is set, so executions that never append a frame pay nothing more.
--
-- Stream entries: a frame is {t = type, p = payload, n = sequence (1-based), [c = correlation id],
-- [m = metadata JSON], [v = summary version], [d = 1 (durable)]}; the close entry is {x = reason},
-- always the last entry. Meta fields: mode, opened (ms), frames, bytes, last_id, closed (1),
-- reason, close_id (its time part is the close time); summary: sum (document), sumv, sum_at (ms); best-effort: ttl
-- (ms), rate (frames/s, EMA), last (ms), persist (1 once a durable frame arrived).

-- The transitions' record reads include `fopen` (30-state.lua owns the rest of the lists).
H.F[#H.F + 1] = 'fopen'
H.F_FENCE[#H.F_FENCE + 1] = 'fopen'

H.FRAME_MODES = { 'durable', 'summary', 'best_effort' }
-- Frames kept by a summary stream (its short tail; the document carries the state).
H.SUMMARY_TAIL = 64
-- Best-effort length cap: clamp(ceil(rate (frames/s) * ttl (s) * 2), MIN, MAX); rate is an EMA.
H.BE_MIN_LEN = 64
H.BE_MAX_LEN = 16384
H.BE_ALPHA = 0.2
-- Default best-effort TTL when an execution's record has none (ms).
H.BE_DEFAULT_TTL = 60000
-- Nesting depth accepted in summary documents and patches.
H.JSON_MAX_DEPTH = 32

-- LIMIT_EXCEEDED naming the limit.
function H.limit(name, max, value)
  H.raise('LIMIT_EXCEEDED', name .. ' exceeded: ' .. H.s(value) .. ' > ' .. H.s(max),
    'limit', name, 'max', H.s(max), 'value', H.s(value))
end

-- Closes the open frame stream of record `r` (nothing when `r.fopen` is empty): appends the
-- close entry {x = reason} (nothing is appended after it, so no trim ever removes it), marks the
-- meta closed and clears `fopen`. A best-effort stream that is not permanent keeps its TTL.
-- Reasons: completed, failed, retry_scheduled, cancelled, expired, lease_lost.
function H.close_frames(core, r, reason, now)
  local idx = r.fopen
  if not idx or idx == '' then return end
  local mkey = H.k_frames_meta(core, idx)
  local m = redis.call('HMGET', mkey, 'mode', 'closed', 'persist', 'ttl')
  if m[2] ~= '1' then
    local skey = H.k_frames(core, idx)
    local id = redis.call('XADD', skey, '*', 'x', reason)
    -- The close time is the close entry's id time (what a tail reports): stored once, as close_id.
    redis.call('HSET', mkey, 'closed', 1, 'reason', reason, 'close_id', id)
    if m[1] == 'best_effort' and m[3] ~= '1' then redis.call('PEXPIRE', skey, H.n(m[4]) > 0 and m[4] or H.BE_DEFAULT_TTL) end
  end
  redis.call('HSET', core, 'fopen', '')
end

-- Close reason of attempt `idx` whose stream was never opened (no frame): from its attempt record,
-- or from the record when the execution ended before that attempt existed; false while it may
-- still run. `rec` = {phase, pstate, acount, aidx}.
function H.unopened_close(core, idx, rec)
  local st = redis.call('HGET', H.k_attempt(core, idx), 'state')
  if st == 'ended_success' then return 'completed' end
  if st == 'ended_cancelled' then return 'cancelled' end
  if st == 'ended_expired' then return 'expired' end
  if st == 'reclaimed' then return 'lease_lost' end
  if st == 'ended_failure' then
    if rec[2] == 'failed' and H.n(rec[4]) == idx then return 'failed' end
    return 'retry_scheduled'
  end
  if st then return false end
  if rec[1] == 'terminal' and idx >= H.n(rec[3]) then
    if rec[2] == 'completed' then return 'completed' end
    return rec[2]
  end
  return false
end

-- JSON Merge Patch (RFC 7396) over JSON text. Objects are parsed into ordered maps; every other
-- value (string, number, array, literal) is kept as its exact source text, so numbers keep every
-- digit and arrays stay arrays (cjson would round both). Input validity is checked by cjson first.
-- An object is {obj = true, keys = {decoded key, ...}, raw = {key -> source text of the key},
-- v = {key -> value}}; any other value is {text = source}.

-- Index of the first non-blank character at or after i.
function H.json_ws(s, i)
  return string.find(s, '[^ \t\r\n]', i) or (#s + 1)
end

-- End (exclusive) of the string literal starting at i.
function H.json_str_end(s, i)
  local j = i + 1
  while true do
    local q = string.find(s, '["\\]', j)
    if not q then H.invalid('payload', 'unterminated string') end
    if string.byte(s, q) == 34 then return q + 1 end
    j = q + 2
  end
end

-- End (exclusive) of the array starting at i (strings skipped, brackets counted).
function H.json_array_end(s, i)
  local depth, j = 0, i
  while true do
    local q = string.find(s, '[%[%]{}"]', j)
    if not q then H.invalid('payload', 'unterminated array') end
    local c = string.byte(s, q)
    if c == 34 then
      j = H.json_str_end(s, q)
    else
      if c == 91 or c == 123 then depth = depth + 1 else depth = depth - 1 end
      j = q + 1
      if depth == 0 then return j end
    end
  end
end

-- Parses the value at i (after blanks); returns the value and the index after it.
function H.json_value(s, i, depth)
  if depth > H.JSON_MAX_DEPTH then H.invalid('payload', 'nested deeper than ' .. H.JSON_MAX_DEPTH) end
  i = H.json_ws(s, i)
  local c = string.byte(s, i)
  if c == 123 then
    local o = { obj = true, keys = {}, raw = {}, v = {} }
    local j = H.json_ws(s, i + 1)
    if string.byte(s, j) == 125 then return o, j + 1 end
    while true do
      local kend = H.json_str_end(s, j)
      local rawkey = string.sub(s, j, kend - 1)
      local key = cjson.decode(rawkey)
      j = H.json_ws(s, kend) + 1 -- past ':'
      local val
      val, j = H.json_value(s, j, depth + 1)
      if o.raw[key] == nil then
        o.keys[#o.keys + 1] = key
        o.raw[key] = rawkey
      end
      o.v[key] = val
      j = H.json_ws(s, j)
      if string.byte(s, j) == 125 then return o, j + 1 end
      j = H.json_ws(s, j + 1) -- past ','
    end
  elseif c == 91 then
    local e = H.json_array_end(s, i)
    return { text = string.sub(s, i, e - 1) }, e
  elseif c == 34 then
    local e = H.json_str_end(s, i)
    return { text = string.sub(s, i, e - 1) }, e
  end
  local e = string.find(s, '[,}%] \t\r\n]', i) or (#s + 1)
  return { text = string.sub(s, i, e - 1) }, e
end

function H.json_encode(v)
  if not v.obj then return v.text end
  local parts = {}
  for _, k in ipairs(v.keys) do
    local x = v.v[k]
    if x ~= nil then parts[#parts + 1] = v.raw[k] .. ':' .. H.json_encode(x) end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

function H.json_merge(target, patch)
  if not patch.obj then return patch end
  if target == nil or not target.obj then target = { obj = true, keys = {}, raw = {}, v = {} } end
  for _, k in ipairs(patch.keys) do
    local pv = patch.v[k]
    if not pv.obj and pv.text == 'null' then
      target.v[k] = nil
    else
      if target.raw[k] == nil then
        target.keys[#target.keys + 1] = k
        target.raw[k] = patch.raw[k]
      end
      target.v[k] = H.json_merge(target.v[k], pv)
    end
  end
  return target
end

-- The document `doc` (JSON text, or false/'' for none) patched with `patch` (JSON text).
function H.merge_patch(doc, patch)
  local ok = pcall(cjson.decode, patch)
  if not ok then H.invalid('payload', 'summary mode: the payload must be a JSON merge patch') end
  local p = H.json_value(patch, 1, 1)
  local d = nil
  if doc and doc ~= '' then d = H.json_value(doc, 1, 1) end
  return H.json_encode(H.json_merge(d, p))
end

-- The reply of an ff_append_frame call whose every frame (args from 9, 6 per frame) carries a
-- client sequence already stored on attempt `r.aidx`'s stream under lease epoch `epoch`, that
-- attempt being the fence's (`aid`): all duplicates, whatever the lease's state now. Nil otherwise.
function H.resent_appends(core, r, epoch, aid, args, count)
  if not r or r.aid ~= aid or not r.aidx or r.aidx == '' then return nil end
  local m = redis.call('HMGET', H.k_frames_meta(core, r.aidx), 'cepoch', 'cseq', 'last_id', 'frames', 'sumv')
  if H.n(m[1]) ~= epoch then return nil end
  local stored = H.n(m[2])
  for i = 0, count - 1 do
    local cseq = tonumber(args[9 + 6 * i + 5])
    if cseq <= 0 or cseq > stored then return nil end
  end
  local out = { 1, 'OK' }
  for _ = 1, count do out[#out + 1] = { 1, m[3] or '', H.n(m[4]), H.n(m[5]), 1 } end
  return out
end

-- Appends one frame for ff_append_frame (the fence and the closed state are already checked).
-- Returns {1, entry id, frame count, summary version, duplicate}; raises (H.raise) a per-frame
-- refusal before writing anything.
function H.append_one(core, r, epoch, lim, now, ftype, payload, corr, meta, durable, cseq)
  local size = #ftype + #payload + #corr + #meta
  if size > lim.frame then H.limit('max_frame_bytes', lim.frame, size) end
  local idx = r.aidx
  local skey, mkey = H.k_frames(core, idx), H.k_frames_meta(core, idx)
  local m = redis.call('HMGET', mkey, 'mode', 'frames', 'bytes', 'sum', 'sumv', 'rate', 'last', 'persist', 'ttl',
    'cepoch', 'cseq', 'last_id')
  if cseq > 0 and H.n(m[10]) == epoch and cseq <= H.n(m[11]) then
    return { 1, m[12] or '', H.n(m[2]), H.n(m[5]), 1 }
  end
  local mode = m[1] or ((r.smode and r.smode ~= '') and r.smode or 'durable')
  local frames = H.n(m[2]) + 1
  local bytes = H.n(m[3]) + size
  local sumv = H.n(m[5])
  local doc = nil
  if mode == 'durable' then
    if frames > lim.frames then H.limit('max_stream_frames', lim.frames, frames) end
    if bytes > lim.bytes then H.limit('max_stream_bytes', lim.bytes, bytes) end
  elseif mode == 'summary' then
    doc = H.merge_patch(m[4], payload)
    if #doc > lim.sum then H.limit('max_summary_bytes', lim.sum, #doc) end
    sumv = sumv + 1
  end

  if r.fopen ~= idx then
    redis.call('HSET', core, 'fopen', idx)
    r.fopen = idx
  end
  local cmd = { 'XADD', skey }
  local ttl, rate, persist = 0, 0, false
  if mode == 'summary' then
    cmd[3], cmd[4] = 'MAXLEN', H.SUMMARY_TAIL
  elseif mode == 'best_effort' then
    ttl = H.n(m[9])
    if ttl <= 0 then ttl = H.n(r.sttl) end
    if ttl <= 0 then ttl = H.BE_DEFAULT_TTL end
    local last = H.n(m[7])
    if last > 0 then
      rate = H.BE_ALPHA * (1000 / math.max(now - last, 1)) + (1 - H.BE_ALPHA) * (tonumber(m[6]) or 0)
    end
    local cap = math.min(math.max(math.ceil(rate * ttl / 1000 * 2), H.BE_MIN_LEN), H.BE_MAX_LEN)
    cmd[3], cmd[4], cmd[5] = 'MAXLEN', '~', cap
    persist = m[8] == '1' or durable
  end
  local n = #cmd
  cmd[n + 1], cmd[n + 2], cmd[n + 3], cmd[n + 4], cmd[n + 5], cmd[n + 6], cmd[n + 7] = '*', 't', ftype, 'p', payload, 'n', frames
  if corr ~= '' then cmd[#cmd + 1] = 'c'; cmd[#cmd + 1] = corr end
  if meta ~= '' then cmd[#cmd + 1] = 'm'; cmd[#cmd + 1] = meta end
  if mode == 'summary' then cmd[#cmd + 1] = 'v'; cmd[#cmd + 1] = sumv end
  if durable then cmd[#cmd + 1] = 'd'; cmd[#cmd + 1] = 1 end
  local id = redis.call(unpack(cmd))

  local set = { 'HSET', mkey, 'frames', frames, 'bytes', bytes, 'last_id', id }
  if cseq > 0 then
    set[#set + 1] = 'cepoch'; set[#set + 1] = epoch
    set[#set + 1] = 'cseq'; set[#set + 1] = cseq
  end
  if not m[1] then
    set[#set + 1] = 'mode'; set[#set + 1] = mode
    set[#set + 1] = 'opened'; set[#set + 1] = now
  end
  if mode == 'summary' then
    set[#set + 1] = 'sum'; set[#set + 1] = doc
    set[#set + 1] = 'sumv'; set[#set + 1] = sumv
    set[#set + 1] = 'sum_at'; set[#set + 1] = now
  elseif mode == 'best_effort' then
    set[#set + 1] = 'ttl'; set[#set + 1] = ttl
    set[#set + 1] = 'rate'; set[#set + 1] = string.format('%.3f', rate)
    set[#set + 1] = 'last'; set[#set + 1] = now
    if persist then set[#set + 1] = 'persist'; set[#set + 1] = 1 end
  end
  redis.call(unpack(set))
  if mode == 'best_effort' then
    if persist then
      if m[8] ~= '1' then redis.call('PERSIST', skey) end
    else
      redis.call('PEXPIRE', skey, ttl)
    end
  end
  return { 1, id, frames, sumv, 0 }
end
