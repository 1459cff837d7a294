# Sourced by run_local.sh and run_tests.sh: make ./.venv (Python 3.11+) and install the project.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  # measured on a 2-core machine from an empty pip cache: 47 s, 1.1 GB
  echo "setting up ./.venv once: Apache Beam, PyAV and the test tools (about 1.1 GB, 1 to 2 minutes)" >&2
  "$PYTHON" -m venv .venv
fi
# Reinstall when pyproject.toml or setup.py changed since the last install.
if [ ! -f .venv/.installed ] || { [ pyproject.toml -nt .venv/.installed ] || [ setup.py -nt .venv/.installed ]; }; then
  if [ -f .venv/.installed ]; then
    echo "pyproject.toml or setup.py changed: updating ./.venv" >&2
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch .venv/.installed
fi
export PATH="$PWD/.venv/bin:$PATH"
