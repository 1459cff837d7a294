#!/usr/bin/env bash
# Install Beam's Prism runner (the portable job service) outside the repository, once, and
# print the binary's path. It is built with Go from the Go module proxy: about 5 minutes the
# first time, then it is there. PRISM_HOME overrides where it goes.
set -euo pipefail
VERSION=${PRISM_VERSION:-v2.77.0}  # the apache-beam installed here; any 2.x SDK talks to it
HOME_DIR=${PRISM_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/snapshot-pipeline/prism-$VERSION}
BINARY="$HOME_DIR/prism"
if [ ! -x "$BINARY" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "error: Prism is not installed at $BINARY, and building it needs Go (go is not on PATH)" >&2
    exit 1
  fi
  mkdir -p "$HOME_DIR"
  # Built into a fresh folder and moved into place: a build that is stopped leaves no binary.
  BUILD=$(mktemp -d "$HOME_DIR/build.XXXXXX")
  trap 'rm -rf "$BUILD"' EXIT
  if ! GOBIN="$BUILD" go install "github.com/apache/beam/sdks/v2/go/cmd/prism@$VERSION" >&2; then
    echo "error: building Prism $VERSION with Go failed (see above)" >&2
    exit 1
  fi
  mv "$BUILD/prism" "$BINARY"
fi
echo "$BINARY"
