"""Typed views of the custom resources and their inputs, parsed and validated once."""
