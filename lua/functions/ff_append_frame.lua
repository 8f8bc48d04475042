--[[ ff_append_frame — appends one output frame to the running attempt's frame stream (fenced by
the lease). The first append opens the stream (record `fopen` = attempt index; meta mode from the
record's `smode`, default durable). Modes (lua/includes/40-frames.lua):
  durable: never trimmed; an append past max stream frames or bytes is refused (LIMIT_EXCEEDED);
  summary: the payload is a JSON Merge Patch (RFC 7396) applied to the meta document, whose version
    is bumped; the stream keeps the last 64 frames;
  best_effort: trimmed to a cap that follows the append rate, clamp(ceil(rate * ttl * 2), 64, 16384);
    the stream key expires `ttl` after the last append, until a durable frame makes it permanent.
The entry id (server time based, "ms-seq") is the frame's cursor.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] frame type (non-empty), [5] payload (bytes),
  [6] correlation id ("" = none), [7] metadata (JSON object text, "" = none), [8] durable (0|1),
  [9] max frame bytes (type + payload + correlation id + metadata), [10] max stream frames and
  [11] max stream bytes (durable mode), [12] max summary document bytes (summary mode), [13] client
  sequence (0 = none): the appender's increasing number of this append within its lease; an append
  whose sequence is not above the last stored one of the same lease epoch is a re-send and is not
  stored again (reply duplicate = 1 with the stream's current last entry id and count).
Reply: {1, "OK", entry id, frame count (sequence of this frame), summary version (0 unless summary),
  duplicate (0|1)}.
Errors: INVALID_ARGUMENT (a summary payload that is not JSON: field `payload`), NOT_FOUND,
  LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE, STREAM_CLOSED (detail close_reason),
  LIMIT_EXCEEDED (detail limit = max_frame_bytes|max_stream_frames|max_stream_bytes|
  max_summary_bytes, max, value). ]]
redis.register_function('ff_append_frame', H.wrap(function(keys, args)
  local _, core = H.exec_keys(keys)
  H.argc(args, 13)
  local lid, epoch, aid = H.fence_args(args, 1)
  local ftype = H.str(args[4], 'frame_type')
  local payload = H.str(args[5], 'payload', true)
  local corr = H.str(args[6], 'correlation_id', true)
  local meta = H.str(args[7], 'metadata', true)
  local durable = H.int(args[8], 'durable', 0, 1)
  local max_frame = H.int(args[9], 'max_frame_bytes', 1, H.MAX_INT)
  local max_frames = H.int(args[10], 'max_stream_frames', 1, H.MAX_INT)
  local max_bytes = H.int(args[11], 'max_stream_bytes', 1, H.MAX_INT)
  local max_sum = H.int(args[12], 'max_summary_bytes', 1, H.MAX_INT)
  local cseq = H.int(args[13], 'client_seq', 0, H.MAX_INT)
  local f = redis.call('HMGET', core, 'phase', 'own', 'lid', 'epoch', 'aid', 'pend', 'pstate', 'outcome',
    'aidx', 'smode', 'sttl', 'fopen')
  local r = nil
  if f[1] then
    r = { phase = f[1], own = f[2], lid = f[3], epoch = f[4], aid = f[5], pend = f[6], pstate = f[7],
      outcome = f[8], aidx = f[9], smode = f[10], sttl = f[11], fopen = f[12] }
  end
  H.fence(r, lid, epoch, aid)
  local size = #ftype + #payload + #corr + #meta
  if size > max_frame then H.limit('max_frame_bytes', max_frame, size) end

  local idx = r.aidx
  local skey, mkey = H.k_frames(core, idx), H.k_frames_meta(core, idx)
  local m = redis.call('HMGET', mkey, 'mode', 'closed', 'reason', 'frames', 'bytes', 'sum', 'sumv', 'rate',
    'last', 'persist', 'ttl', 'cepoch', 'cseq', 'last_id')
  if m[2] == '1' then
    H.raise('STREAM_CLOSED', 'the frame stream is closed (' .. tostring(m[3]) .. ')', 'close_reason', m[3] or '')
  end
  if cseq > 0 and H.n(m[12]) == epoch and cseq <= H.n(m[13]) then
    return { 1, 'OK', m[14] or '', H.n(m[4]), H.n(m[7]), 1 }
  end
  local mode = m[1] or ((r.smode and r.smode ~= '') and r.smode or 'durable')
  local frames = H.n(m[4]) + 1
  local bytes = H.n(m[5]) + size
  local sumv = H.n(m[7])
  local doc = nil
  if mode == 'durable' then
    if frames > max_frames then H.limit('max_stream_frames', max_frames, frames) end
    if bytes > max_bytes then H.limit('max_stream_bytes', max_bytes, bytes) end
  elseif mode == 'summary' then
    doc = H.merge_patch(m[6], payload)
    if #doc > max_sum then H.limit('max_summary_bytes', max_sum, #doc) end
    sumv = sumv + 1
  end

  local now = H.now()
  if r.fopen ~= idx then redis.call('HSET', core, 'fopen', idx) end
  local cmd = { 'XADD', skey }
  local ttl, rate, persist = 0, 0, false
  if mode == 'summary' then
    cmd[3], cmd[4] = 'MAXLEN', H.SUMMARY_TAIL
  elseif mode == 'best_effort' then
    ttl = H.n(m[11])
    if ttl <= 0 then ttl = H.n(r.sttl) end
    if ttl <= 0 then ttl = H.BE_DEFAULT_TTL end
    local last = H.n(m[9])
    if last > 0 then
      rate = H.BE_ALPHA * (1000 / math.max(now - last, 1)) + (1 - H.BE_ALPHA) * (tonumber(m[8]) or 0)
    end
    local cap = math.min(math.max(math.ceil(rate * ttl / 1000 * 2), H.BE_MIN_LEN), H.BE_MAX_LEN)
    cmd[3], cmd[4], cmd[5] = 'MAXLEN', '~', cap
    persist = m[10] == '1' or durable == 1
  end
  local n = #cmd
  cmd[n + 1], cmd[n + 2], cmd[n + 3], cmd[n + 4], cmd[n + 5], cmd[n + 6], cmd[n + 7] = '*', 't', ftype, 'p', payload, 'n', frames
  if corr ~= '' then cmd[#cmd + 1] = 'c'; cmd[#cmd + 1] = corr end
  if meta ~= '' then cmd[#cmd + 1] = 'm'; cmd[#cmd + 1] = meta end
  if mode == 'summary' then cmd[#cmd + 1] = 'v'; cmd[#cmd + 1] = sumv end
  if durable == 1 then cmd[#cmd + 1] = 'd'; cmd[#cmd + 1] = 1 end
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
      if m[10] ~= '1' then redis.call('PERSIST', skey) end
    else
      redis.call('PEXPIRE', skey, ttl)
    end
  end
  return { 1, 'OK', id, frames, sumv, 0 }
end))
