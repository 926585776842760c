"""Redis client layer: URL parsing, the client actor (the only redis-py user) and Lua scripts."""
