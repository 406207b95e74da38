"""Benchmarks: the engine under load beside the bare aiohttp ceiling, and offline figures.

`python -m bench.run --quick` takes a few minutes; `python -m bench.run` is the full set.
See docs/performance.md for what is measured, how, and the latest figures.
"""
