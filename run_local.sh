#!/usr/bin/env bash
# Make the sample videos, run the example manifest on the local runner, print the results.
# Extra arguments go to the pipeline (e.g. --runner PortableRunner --job_endpoint embed).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
python examples/make_samples.py buckets
code=0
python -m pipeline --manifest examples/manifest.jsonl --results results/example --bucket_root buckets "$@" || code=$?
# Exit 3 means the run completed and some jobs failed: lines 6 to 10 of the example fail on
# purpose, so the table is printed and the script succeeds. A run that failed (1) or could
# not start (2) ends the script with its code.
if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
  exit "$code"
fi
python -m pipeline.show results/example
