"""The request path at scale: tenancy's overhead, tenant count, backend memory, registry lookups.

Run with `make bench` (or `python -m bench.request_path --help`); numbers go to bench/README.md.
"""
