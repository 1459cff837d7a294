# Sourced by run_local.sh and run_tests.sh: make ./.venv (Python 3.11+) and install the project.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall when pyproject.toml or setup.py changed since the last install.
if [ ! -f .venv/.installed ] || { [ pyproject.toml -nt .venv/.installed ] || [ setup.py -nt .venv/.installed ]; }; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch .venv/.installed
fi
export PATH="$PWD/.venv/bin:$PATH"
