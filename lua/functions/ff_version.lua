--[[ ff_version (no-writes) — the version of the loaded library.
KEYS: none. ARGV: none.
Reply: integer (the library version; gateway/src/engine/lua-library.ts LIBRARY_VERSION).
Errors: none. ]]
redis.register_function {
  function_name = 'ff_version',
  callback = function() return H.VERSION end,
  flags = { 'no-writes' },
}
