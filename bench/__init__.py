"""Performance benchmark of the cleanup job against its quality bar: `python -m bench.run`."""
