--[[ ff_keyring — the waitpoint token keyring (one hash, read by every gateway; the gateway signs
and checks tokens, Lua never does). Fields: `current` = current key id, `secret:<kid>` = secret
(hex), `expires:<kid>` = Unix ms after which an old key is refused (never set for the current key).
Mode init: installs (kid, secret) as the current key unless a keyring exists (first boot; racing
gateways agree on the first). Mode rotate: drops old keys whose grace has passed, gives the current
key an expiry of now + grace (0 = refused at once) and installs (kid, secret) as the new current key.
KEYS: [1] keyring key `ff:keyring:<name>` (untagged: one key, one slot).
ARGV: [1] mode init|rotate, [2] key id (1..32 of [A-Za-z0-9_-], never used before), [3] secret
  (hex, 32..256 characters), [4] grace (ms; rotate only, else 0).
Reply: {1, "OK", status installed|exists|rotated, current kid, previous kid ("" when none),
  previous key's expiry (Unix ms, 0 when none), old keys dropped}.
Errors: INVALID_ARGUMENT (field `key_id` when the id was already used). ]]
redis.register_function('ff_keyring', H.wrap(function(keys, args)
  local k = keys[1]
  if type(k) ~= 'string' or string.sub(k, 1, 11) ~= 'ff:keyring:' then H.invalid('KEYS keyring', k) end
  H.argc(args, 4)
  local mode = H.enum(args[1], 'mode', { 'init', 'rotate' })
  local kid = H.str(args[2], 'key_id')
  if #kid > 32 or not string.match(kid, '^[A-Za-z0-9_-]+$') then H.invalid('key_id', kid) end
  local secret = H.str(args[3], 'secret')
  if #secret < 32 or #secret > 256 or #secret % 2 == 1 or not string.match(secret, '^[0-9a-f]+$') then H.invalid('secret', '(hidden)') end
  local grace = H.int(args[4], 'grace_ms', 0, H.MAX_INT)
  local current = redis.call('HGET', k, 'current')
  if current and mode == 'init' then return { 1, 'OK', 'exists', current, '', 0, 0 } end
  if current and (kid == current or redis.call('HEXISTS', k, 'secret:' .. kid) == 1 or redis.call('HEXISTS', k, 'expires:' .. kid) == 1) then
    H.raise('INVALID_ARGUMENT', 'key_id ' .. kid .. ' was already used', 'field', 'key_id')
  end
  if not current then
    redis.call('HSET', k, 'current', kid, 'secret:' .. kid, secret)
    return { 1, 'OK', 'installed', kid, '', 0, 0 }
  end
  local now = H.now()
  local dropped = 0
  local all = redis.call('HGETALL', k)
  for i = 1, #all, 2 do
    local old = string.match(all[i], '^expires:(.+)$')
    if old and H.n(all[i + 1]) <= now then
      -- The expiry stays (without the secret) so the id is never used again.
      dropped = dropped + redis.call('HDEL', k, 'secret:' .. old)
    end
  end
  local until_ms = now + grace
  redis.call('HSET', k, 'expires:' .. current, until_ms, 'current', kid, 'secret:' .. kid, secret)
  return { 1, 'OK', 'rotated', kid, current, until_ms, dropped }
end))
