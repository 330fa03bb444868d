"""The imperative shell: caches and watches, the queue, the reconciler (read, ask plan/, apply
through kube/ and aws/), and kopf's start-up and cleanup registrations."""
