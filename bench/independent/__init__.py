"""Tenantry against an independent minimal FastAPI app (issue 17): see bench/README.md."""
