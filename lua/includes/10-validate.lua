-- Argument validation. Every failure is INVALID_ARGUMENT naming the argument (detail `field`).

function H.invalid(name, v)
  H.raise('INVALID_ARGUMENT', 'invalid ' .. name .. ': ' .. tostring(v), 'field', name)
end

-- An integer in [min, max] (bounds are mandatory: inf and nan are refused).
function H.int(v, name, min, max)
  local n = tonumber(v)
  if n == nil or n ~= n or n ~= math.floor(n) or n < min or n > max then H.invalid(name, v) end
  return n
end

-- A finite number in [min, max].
function H.num(v, name, min, max)
  local n = tonumber(v)
  if n == nil or n ~= n or n < min or n > max then H.invalid(name, v) end
  return n
end

-- A string argument; non-empty unless allow_empty.
function H.str(v, name, allow_empty)
  if type(v) ~= 'string' or (v == '' and not allow_empty) then H.invalid(name, v) end
  return v
end

-- One of the given words.
function H.enum(v, name, words)
  for i = 1, #words do
    if v == words[i] then return v end
  end
  H.invalid(name, v)
end

-- The exact ARGV count a function expects.
function H.argc(args, n)
  if #args ~= n then H.invalid('ARGV count', #args .. ' (expected ' .. n .. ')') end
end

-- CSV (no empty items) -> set.
function H.csv_set(csv)
  local set = {}
  for item in string.gmatch(csv, '[^,]+') do set[item] = true end
  return set
end

-- True when every item of `csv` is in `set`.
function H.csv_subset(csv, set)
  for item in string.gmatch(csv, '[^,]+') do
    if not set[item] then return false end
  end
  return true
end
