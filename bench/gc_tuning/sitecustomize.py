"""An experiment, not a setting of Plaza: on the PYTHONPATH of a server the harness
starts (bench/resume.py --gc-threshold), this raises CPython's generation-0 collection
threshold to BENCH_GC_THRESHOLD allocations (the default is 700), to measure what the
cyclic garbage collector costs while thousands of sockets connect at once."""

import gc
import os

_threshold = os.environ.get("BENCH_GC_THRESHOLD")
if _threshold:
    gc.set_threshold(int(_threshold), 50, 100)
