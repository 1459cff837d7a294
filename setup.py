"""A shim for Dataflow's `--setup_file`: the project's metadata is in pyproject.toml."""

from setuptools import setup

setup()
