#!/usr/bin/env bash
# Make the sample videos, run the example manifest on the local runner, print the results.
# Extra arguments go to the pipeline (e.g. --runner PortableRunner --job_endpoint embed).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
python examples/make_samples.py buckets
python -m pipeline --manifest examples/manifest.jsonl --results results/example --bucket_root buckets "$@"
python -m pipeline.show results/example
