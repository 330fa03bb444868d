"""Keeps Amazon ECR image pull secrets fresh in Kubernetes, without stored keys."""

__version__ = "0.1.0"
