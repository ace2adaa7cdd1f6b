"""Code only tests and benchmarks use: never imported by the service, tenancy or migrations."""
