-- Record this instance as alive and count the instances seen recently.
-- KEYS[1] sorted set of instances; ARGV[1] instance id; ARGV[2] freshness window, ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fresh = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - fresh)
redis.call('PEXPIRE', KEYS[1], fresh * 2)
return redis.call('ZCARD', KEYS[1])
