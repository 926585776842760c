-- Sliding window log: trim, count, add with a unique member, expire — atomically.
-- KEYS[1]  the window (a sorted set of hits scored by server time in microseconds)
-- ARGV[1]  window length, microseconds
-- ARGV[2]  limit (max hits per window)
-- ARGV[3]  unique suffix for the member (caller-chosen)
-- Returns {allowed (0/1), hits in window, retry_after microseconds, member or ""}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local retry = window
  if oldest[2] then retry = tonumber(oldest[2]) + window - now end
  return {0, count, retry, ''}
end
local member = now .. '-' .. ARGV[3]
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return {1, count + 1, 0, member}
