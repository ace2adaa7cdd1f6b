"""Helpers of the tests (fixtures stay in tests/conftest.py); what the benchmarks need, too, is
the kit in tenancy/testing/."""
