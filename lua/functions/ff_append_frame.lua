--[[ ff_append_frame — appends output frames to the running attempt's frame stream (fenced by the
lease), in order; the gateway coalesces the appends of one lease that arrive while one call is in
flight into one call. The first append opens the stream (record `fopen` = attempt index; meta mode
from the record's `smode`, default durable). Modes (lua/includes/40-frames.lua):
  durable: never trimmed; an append past max stream frames or bytes is refused (LIMIT_EXCEEDED);
  summary: the payload is a JSON Merge Patch (RFC 7396) applied to the meta document, whose version
    is bumped; the stream keeps the last 64 frames;
  best_effort: trimmed to a cap that follows the append rate, clamp(ceil(rate * ttl * 2), 64, 16384);
    the stream key expires `ttl` after the last append, until a durable frame makes it permanent.
The entry id (server time based, "ms-seq") is the frame's cursor. The fence and the stream's
closed state are checked once for the whole call (their errors are the call's reply); the other
checks are per frame: a refused frame changes nothing and the next frames are still appended.
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] lease id, [2] lease epoch, [3] attempt id, [4] max frame bytes (type + payload +
  correlation id + metadata), [5] max stream frames and [6] max stream bytes (durable mode), [7] max
  summary document bytes (summary mode), [8] frame count F (1..10000), then per frame (6 each):
  frame type (non-empty), payload (bytes), correlation id ("" = none), metadata (JSON object text,
  "" = none), durable (0|1), client sequence (0 = none: the appender's increasing number of this
  append within its lease; an append whose sequence is not above the last stored one of the same
  lease epoch is a re-send and is not stored again: reply duplicate = 1 with the stream's current
  last entry id and count). A call whose every frame is such a re-send is answered so even after
  the lease ended (a worker re-sending unanswered appends after a reconnect, when its complete
  committed meanwhile, learns they were stored), as long as the attempt is still the record's.
Reply: {1, "OK", F results}; a result is {1, entry id, frame count (sequence of this frame), summary
  version (0 unless summary), duplicate (0|1)} or {0, code, message, k1, v1, ...}.
Errors: (call) INVALID_ARGUMENT, NOT_FOUND, LEASE_EXPIRED, EXECUTION_NOT_ACTIVE, STALE_LEASE,
  STREAM_CLOSED (detail close_reason); (per frame) INVALID_ARGUMENT (a summary payload that is not
  JSON: field `payload`), LIMIT_EXCEEDED (detail limit = max_frame_bytes|max_stream_frames|
  max_stream_bytes|max_summary_bytes, max, value). ]]
redis.register_function('ff_append_frame', H.wrap(function(keys, args)
  local _, core = H.exec_keys(keys)
  local lid, epoch, aid = H.fence_args(args, 1)
  local lim = {
    frame = H.int(args[4], 'max_frame_bytes', 1, H.MAX_INT),
    frames = H.int(args[5], 'max_stream_frames', 1, H.MAX_INT),
    bytes = H.int(args[6], 'max_stream_bytes', 1, H.MAX_INT),
    sum = H.int(args[7], 'max_summary_bytes', 1, H.MAX_INT),
  }
  local count = H.int(args[8], 'frame_count', 1, 10000)
  H.argc(args, 8 + 6 * count)
  for i = 0, count - 1 do
    local b = 9 + 6 * i
    H.str(args[b], 'frame_type')
    for j = 1, 3 do H.str(args[b + j], 'frame', true) end
    H.int(args[b + 4], 'durable', 0, 1)
    H.int(args[b + 5], 'client_seq', 0, H.MAX_INT)
  end
  local f = redis.call('HMGET', core, 'phase', 'own', 'lid', 'epoch', 'aid', 'pend', 'pstate', 'outcome',
    'aidx', 'smode', 'sttl', 'fopen')
  local r = nil
  if f[1] then
    r = { phase = f[1], own = f[2], lid = f[3], epoch = f[4], aid = f[5], pend = f[6], pstate = f[7],
      outcome = f[8], aidx = f[9], smode = f[10], sttl = f[11], fopen = f[12] }
  end
  local code, detail = H.fence_code(r, lid, epoch, aid)
  if code then
    -- Only a refused call pays for this check: re-sends of stored frames are answered as such.
    local dup = H.resent_appends(core, r, epoch, aid, args, count)
    if dup then return dup end
    H.raise(code, 'fence rejected: ' .. code, unpack(detail))
  end
  local closed = redis.call('HMGET', H.k_frames_meta(core, r.aidx), 'closed', 'reason')
  if closed[1] == '1' then
    H.raise('STREAM_CLOSED', 'the frame stream is closed (' .. tostring(closed[2]) .. ')', 'close_reason', closed[2] or '')
  end
  local out = { 1, 'OK' }
  local now = H.now()
  for i = 0, count - 1 do
    local b = 9 + 6 * i
    local ok, res = pcall(H.append_one, core, r, epoch, lim, now, args[b], args[b + 1], args[b + 2], args[b + 3],
      args[b + 4] == '1', tonumber(args[b + 5]))
    if ok then
      out[#out + 1] = res
    elseif type(res) == 'table' and res[1] == H.ABORT then
      out[#out + 1] = res[2]
    else
      error(res)
    end
  end
  return out
end))
