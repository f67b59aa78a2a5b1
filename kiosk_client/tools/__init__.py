"""Tools around the kiosk: the clerk bot (tests, benchmarks, demo) and the benchmarks."""
