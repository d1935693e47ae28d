"""Speed and memory measurements (results go to BENCHMARKS.md, never into timed tests)."""
