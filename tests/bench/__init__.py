"""Each benchmark run once, tiny, as `python -m bench.<name>` in its own process: it still produces
numbers (never asserted). tests/ never imports bench."""
