"""Benchmarks of the web and worker processes: `pipenv run bench` (see benchmarks/bench.py)."""
