"""The queue worker: `python -m flowbuilder.runtime.worker` (FLOWBUILDER_WORKER_MODE: poll or once)."""
