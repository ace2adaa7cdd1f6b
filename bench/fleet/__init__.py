"""`python -m bench.fleet`: one server with thousands to 100,000 tenants, measured as it grows."""
