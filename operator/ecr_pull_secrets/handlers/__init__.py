"""Thin kopf handlers: read the body, ask plan/ what to do, apply it through kube/ and aws/."""
