"""HTTP layer: request models, authentication, the error mapping and the routes (a Chalice Blueprint)."""
