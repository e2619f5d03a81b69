"""Plaza's benchmark harness: real `plaza serve` processes measured from loopback clients.

Run everything with `.venv/bin/python bench/run_all.py`; the report is docs/benchmarks.md.
"""
