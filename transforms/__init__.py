"""The pipeline's steps: thin Beam wrappers around the functions of `snapshot.jobs`."""
