"""OAuth 2.1 domain: framework-neutral; imports neither Quart nor Redis."""
