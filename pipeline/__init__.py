"""The SubmitSnapshotJob batch pipeline: options, graph and entry point (python -m pipeline)."""
