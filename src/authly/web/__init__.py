"""HTTP adapters: parse the request, call the domain, render the result."""
