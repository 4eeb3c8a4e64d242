"""Performance benchmark of the cleanup job (SPEC §8): `python -m bench.run`."""
