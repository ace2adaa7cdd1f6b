"""Code only tests and benchmarks use, never imported by the service, tenancy or migrations.

The kit they share: throwaway databases (throwaway.py, on one server or every node of a Citus
cluster, citus.py, drop.py), fleets of tenants and scratch Alembic setups (fleets.py), an app
served by uvicorn in the caller's event loop (servers.py), and a PgBouncer of one's own
(pgbouncer.py).

Nothing here imports service/, tests/ or bench/: what is the project's (its alembic.ini, its app)
is passed in by the caller."""
