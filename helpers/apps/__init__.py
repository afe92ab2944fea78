"""The sample services the lab deploys (each a single stdlib-only file, mounted from a ConfigMap)."""
