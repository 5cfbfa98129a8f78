"""Benchmarks: measured figures for the claims the pipeline makes about calls, rate limits and speed.

``python -m benchmarks [SCENARIO ...]`` (``make bench``) starts the local Hostaway stand-in in its own
process, runs each scenario against it and a fresh database, prints a table of figures with their
targets and writes one JSON file per scenario under ``benchmarks/results/``. The stand-in's own call log
is the judge of calls, 429s and windows, never the pipeline's counters. A missed target exits non-zero.
Figures are measured, not asserted in tests: these machines are shared and noisy.
"""
