-- Read a session hash and delete it in one step: of concurrent takers only one gets it.
-- KEYS[1] the session hash; KEYS[2] (optional) the index of the pool it was added to
-- Returns the hash as a flat field, value list (empty if there was none).
local data = redis.call('HGETALL', KEYS[1])
if #data > 0 then
  redis.call('DEL', KEYS[1])
end
if KEYS[2] then
  redis.call('ZREM', KEYS[2], KEYS[1])
end
return data
