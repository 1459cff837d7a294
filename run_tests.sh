#!/usr/bin/env bash
# Set up ./.venv and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
source scripts/system_packages.sh
python -m pytest -q tests "$@"
