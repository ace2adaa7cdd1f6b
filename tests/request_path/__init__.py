"""A request's way through the app: tenant resolution, the search_path riding with BEGIN, the
pool, isolation under concurrency, PgBouncer, mixed fleets, the edge, limits, replay, logs,
metrics."""
