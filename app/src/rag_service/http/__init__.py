"""HTTP layer of the service: contract, error mapping, middleware, drills and the server lifecycle."""
