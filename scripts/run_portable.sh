#!/usr/bin/env bash
# The example on the portable path: Beam's Prism runner with EXTERNAL SDK workers from a worker
# pool that this script starts and stops, then the results table. Like ./run_local.sh, but
# results/portable. Extra arguments go to the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
PRISM=$(scripts/prism.sh)
PORT=${POOL_PORT:-$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
mkdir -p results
python -m apache_beam.runners.worker.worker_pool_main --service_port "$PORT" >results/pool.log 2>&1 &
POOL=$!
trap 'kill "$POOL" 2>/dev/null; wait "$POOL" 2>/dev/null || true' EXIT
python examples/make_samples.py buckets
status=0
python -m pipeline --manifest examples/manifest.jsonl --results results/portable --bucket_root buckets \
  --runner PrismRunner --prism_location "$PRISM" \
  --environment_type EXTERNAL --environment_config "localhost:$PORT" "$@" || status=$?
# 3: some jobs failed, which the example's bad lines do on purpose
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
python -m pipeline.show results/portable
