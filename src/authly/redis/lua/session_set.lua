-- Replace a session hash and set its expiry in one step.
-- KEYS[1] the session hash; ARGV[1] ttl milliseconds; ARGV[2..] field, value pairs
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
