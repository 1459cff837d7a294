#!/usr/bin/env bash
# Regenerate docs/report.jpg, the README's picture of the report: run the example, write its
# report, and let headless Chromium take a screenshot.
set -euo pipefail
cd "$(dirname "$0")/.."
./run_local.sh >/dev/null
source scripts/venv.sh
source scripts/system_packages.sh
python -m pipeline.report results/example --out results/example-report.html
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --hide-scrollbars --window-size=1100,1300 --screenshot=results/report.png \
  "file://$PWD/results/example-report.html" 2>/dev/null
python -c "from PIL import Image; Image.open('results/report.png').convert('RGB').save('docs/report.jpg', quality=60)"
