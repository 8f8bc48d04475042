--[[ ff_read_frames (no-writes) — reads a range of one attempt's frame stream, with its state.
Entries after the cursor `after` (exclusive; "" = from the start) up to `to` (inclusive; "" = the
end), at most `count`. The close entry {x = reason} is an entry like the frames (always the last).
Closed: the meta says so; or, for an attempt whose stream was never opened (no frame), its attempt
record has ended, or the execution ended before that attempt existed (the reason is then derived;
no close entry exists).
KEYS: [1] partition prefix `ff:{p:N}:`, [2] record key.
ARGV: [1] attempt index (0..2^53-1), [2] after entry id ("" or "ms-seq"), [3] to entry id ("" or
  "ms-seq"), [4] count (1..10000).
Reply: {1, "OK", mode (durable|summary|best_effort), closed (0|1), close reason, closed at (Unix ms:
  the time part of the close entry's id; 0 when there is no close entry), frame count (frames appended), summary document or nil, summary version,
  entries: XRANGE reply {{id, {field, value, ...}}, ...}, close entry id ("" when none)}.
Errors: INVALID_ARGUMENT, NOT_FOUND (no such execution). ]]
redis.register_function {
  function_name = 'ff_read_frames',
  flags = { 'no-writes' },
  callback = H.wrap(function(keys, args)
    local _, core = H.exec_keys(keys)
    H.argc(args, 4)
    local idx = H.int(args[1], 'attempt_index', 0, H.MAX_INT)
    local after = H.str(args[2], 'after', true)
    local to = H.str(args[3], 'to', true)
    local count = H.int(args[4], 'count', 1, 10000)
    if after ~= '' and not string.match(after, '^%d+%-%d+$') then H.invalid('after', after) end
    if to ~= '' and not string.match(to, '^%d+%-%d+$') then H.invalid('to', to) end
    local rec = redis.call('HMGET', core, 'phase', 'pstate', 'acount', 'aidx', 'smode')
    if not rec[1] then H.raise('NOT_FOUND', 'no such execution') end
    local sidx = H.s(idx)
    local m = redis.call('HMGET', H.k_frames_meta(core, sidx), 'mode', 'closed', 'reason', 'close_id', 'frames',
      'sum', 'sumv', 'close_id')
    local mode = m[1] or ((rec[5] and rec[5] ~= '') and rec[5] or 'durable')
    local closed, reason, closed_at = 0, '', 0
    if m[2] == '1' then
      -- One source of truth: the close entry's id time, which TailStream reports too.
      closed, reason, closed_at = 1, m[3] or '', H.n(string.match(m[4] or '', '^(%d+)'))
    elseif not m[1] then
      local why = H.unopened_close(core, idx, rec)
      if why then closed, reason = 1, why end
    end
    local entries = {}
    if m[1] or m[2] then
      local from = after == '' and '-' or ('(' .. after)
      entries = redis.call('XRANGE', H.k_frames(core, sidx), from, to == '' and '+' or to, 'COUNT', count)
    end
    return { 1, 'OK', mode, closed, reason, closed_at, H.n(m[5]), m[6] or false, H.n(m[7]), entries, m[8] or '' }
  end),
}
