"""nnrosetta benchmarks (not tests): one command, one table of overheads.

Run ``python bench/run.py`` (``make bench``); ``--quick`` for a smoke run.
"""
