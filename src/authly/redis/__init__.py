"""Redis client layer: URL parsing and (later) the client actor."""
