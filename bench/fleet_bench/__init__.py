"""The fleet benchmark's parts (growing, measuring, reporting); bench/fleet.py runs them."""
