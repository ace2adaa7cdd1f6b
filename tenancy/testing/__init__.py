"""Shared test and benchmark kit: reference implementations and helpers, no production code."""
