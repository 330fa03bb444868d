"""Benchmarks of the real operator on the local control plane and the AWS emulator.

Scripts, not tests: each `python -m bench.pN_…` starts its own control plane (audit log on),
AWS emulator and operator subprocess, measures one thing and prints one Markdown table row on
stdout (progress goes to stderr). `python -m bench` runs them all under one table header.
See docs/benchmarks.md.
"""
