-- Core helpers of the flowfabric library. Every helper lives in the one table H: Lua 5.1 caps a
-- chunk at 200 locals and a closure at 60 upvalues, so nothing else is declared at top level.
-- (FF_LIBRARY_VERSION is injected above this file by gateway/src/engine/lua-library.ts.)
local H = {}

H.VERSION = FF_LIBRARY_VERSION
-- Epoch of eligible scores (2020-01-01T00:00:00Z) and the width of one priority band (2^42 ms).
H.SCORE_EPOCH = 1577836800000
H.SCORE_BAND = 4398046511104
-- Create idempotency window: the default, and the longest a create may ask for.
H.IDEM_TTL_MS = 86400000
-- Largest integer accepted for a time or a count argument (2^53 - 1).
H.MAX_INT = 9007199254740991

-- Marker of an abort raised by H.raise (compared by identity).
H.ABORT = {}

-- Aborts the current function with the reply {0, code, message, k1, v1, ...}. Only used before
-- the first write (validation, fencing), so nothing is ever half-applied.
function H.raise(code, message, ...)
  error({ H.ABORT, { 0, code, message, ... } })
end

-- Wraps a function body: an H.raise becomes its {0, CODE, ...} reply; any other Lua error (a bug)
-- becomes an error reply instead of a crash with a stack trace.
function H.wrap(body)
  return function(keys, args)
    local ok, res = pcall(body, keys, args)
    if ok then return res end
    if type(res) == 'table' then
      if res[1] == H.ABORT then return res[2] end
      if res.err then return redis.error_reply(res.err) end
    end
    return redis.error_reply('ERR flowfabric: ' .. tostring(res))
  end
end

-- Server time in Unix milliseconds.
function H.now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integer to decimal string without exponent (tostring uses %.14g and loses digits).
function H.s(n)
  return string.format('%.0f', n)
end

-- Appends values to a reply array, in order (replies are built by appending, never by offset).
function H.push(out, ...)
  local n = #out
  for i = 1, select('#', ...) do out[n + i] = select(i, ...) end
end

-- Appends every item of list to out.
function H.push_all(out, list)
  local n = #out
  for i = 1, #list do out[n + i] = list[i] end
end

-- A numeric record field (false/empty -> 0).
function H.n(v)
  return tonumber(v) or 0
end
