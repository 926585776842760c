-- Record this instance as alive, count the instances seen recently, and tell whether
-- Redis lost its data since the last call (restart without persistence, FLUSHALL).
-- KEYS[1] sorted set of instances; KEYS[2] epoch marker (no expiry)
-- ARGV[1] instance id; ARGV[2] freshness window, ms
-- Returns {instances seen, 1 if the epoch marker had to be created else 0}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fresh = tonumber(ARGV[2])
local created = redis.call('SET', KEYS[2], '1', 'NX') and 1 or 0
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - fresh)
redis.call('PEXPIRE', KEYS[1], fresh * 2)
return {redis.call('ZCARD', KEYS[1]), created}
