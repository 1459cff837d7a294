"""The snapshot domain: request parsing, planning, decoding, images and buckets.

Nothing here imports apache_beam: the pipeline, a CLI or a server can all use it.
"""
