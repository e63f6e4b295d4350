"""Benchmarks: scripts that print measured figures."""
