"""The only code besides kopf that talks to the Kubernetes API."""
