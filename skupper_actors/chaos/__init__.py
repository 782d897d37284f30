"""Chaos testing harness."""
