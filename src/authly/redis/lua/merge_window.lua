-- Merge hits recorded elsewhere (memory, during an outage) into a window.
-- KEYS[1]  the window
-- ARGV[1]  window length, microseconds
-- ARGV[2..] pairs: age of the hit in microseconds, unique member
-- Ages are converted with this server's clock, so every instance agrees.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local age = tonumber(ARGV[i])
  if age < window then
    redis.call('ZADD', KEYS[1], 'NX', now - age, ARGV[i + 1])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return redis.call('ZCARD', KEYS[1])
