-- Check every window, then take one request and `tokens` from all of them, atomically.
-- KEYS: per window, its request counter then its token counter.
-- ARGV: tokens, then per window: request limit, token limit (0 = none), ms until the window ends.
-- Returns 0 when granted, else the ms to wait before the window that refused resets.
local tokens = tonumber(ARGV[1])
local windows = #KEYS / 2
for i = 1, windows do
  local req_limit = tonumber(ARGV[i * 3 - 1])
  local tok_limit = tonumber(ARGV[i * 3])
  local wait_ms = tonumber(ARGV[i * 3 + 1])
  if req_limit > 0 and tonumber(redis.call('GET', KEYS[i * 2 - 1]) or '0') + 1 > req_limit then
    return wait_ms
  end
  local used = tonumber(redis.call('GET', KEYS[i * 2]) or '0')
  if tok_limit > 0 and used > 0 and used + tokens > tok_limit then
    return wait_ms
  end
end
for i = 1, windows do
  local ttl = tonumber(ARGV[i * 3 + 1]) + 2000
  redis.call('INCR', KEYS[i * 2 - 1])
  redis.call('PEXPIRE', KEYS[i * 2 - 1], ttl)
  redis.call('INCRBY', KEYS[i * 2], tokens)
  redis.call('PEXPIRE', KEYS[i * 2], ttl)
end
return 0
