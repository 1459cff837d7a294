# Sourced by run_tests.sh: Debian packages the tests use (headless Chromium for the report),
# installed once when missing.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null || true  # a list that cannot be refreshed may still hold chromium
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: Debian's chromium is missing; tests/test_report.py needs it (apt-get install chromium)" >&2
  fi
fi
