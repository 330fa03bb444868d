"""Test harness: local control plane, AWS emulator and process helpers."""
