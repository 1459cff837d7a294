#!/usr/bin/env bash
# Set up ./.venv, check lint, format and types, and run the test suite. Extra arguments go
# to pytest: `./run_tests.sh -m "not slow"` is the fast unit run.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ruff check .
ruff format --check .
mypy
source scripts/system_packages.sh
python -m pytest -q tests "$@"
