"""Scanning long recordings: stream audio, score sliding windows, decide events, write tables.

Modules, in the order data flows through them:
    inputs      which files to scan (folders, globs, list files)
    stream      decode + resample a file in bounded blocks, window by window
    infer       per-window class scores (exact per-window, or fast shared-trunk blocks)
    events      thresholds, background rule, merging windows into events
    timestamps  absolute start times from recorder file names
    writers     CSV, Raven selection tables, Audacity labels, score matrices, manifest
    journal     per-file results kept atomically, so an interrupted scan resumes exactly
    runner      the scan procedure tying these together
"""
