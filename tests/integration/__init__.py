"""Tests that run against the local control plane and the AWS emulator."""
