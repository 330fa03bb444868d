"""Test suite for the ECR pull secret operator."""
