-- Store a new session hash in a bounded pool (state created by anonymous requests).
-- The pool's index is a sorted set of session keys scored by their expiry (server
-- time, ms). While the index holds `limit` or more members, the one closest to expiry
-- is removed, and its hash deleted if it still exists (only that one counts as an
-- eviction: answered or expired entries just leave the index). Nothing outside the
-- pool is ever touched.
-- KEYS[1] the session hash; KEYS[2] the pool index
-- ARGV[1] ttl milliseconds; ARGV[2] limit; ARGV[3..] field, value pairs
-- Returns the number of live entries evicted.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREM', KEYS[2], KEYS[1])
local evicted = 0
while redis.call('ZCARD', KEYS[2]) >= limit do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  if redis.call('DEL', oldest[1]) == 1 then
    evicted = evicted + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
redis.call('PEXPIRE', KEYS[2], ttl)
return evicted
