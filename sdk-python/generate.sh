#!/usr/bin/env bash
# Generates the Python message classes of the flowfabric package from proto/ into
# sdk-python/src/flowfabric/v1 (the import path protoc's output expects: flowfabric.v1.*_pb2).
# Needs only protoc (Debian: protobuf-compiler 3.21); no grpc plugin: the SDK builds its RPC
# callables from the service descriptors (flowfabric/_rpc.py). The output is committed and never
# edited by hand; `npm run generate` runs this script and CI fails when it drifts.
#
#   bash sdk-python/generate.sh            # regenerate in place
#   bash sdk-python/generate.sh --check    # exit 1 if the committed stubs are stale
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$here/src/flowfabric/v1"
protoc_bin="${PROTOC:-protoc}"
if ! command -v "$protoc_bin" >/dev/null 2>&1; then
  echo "protoc not found: sudo apt-get install -y protobuf-compiler" >&2
  exit 2
fi

generate() { # $1 = a directory that receives flowfabric/v1/*_pb2.py
  mkdir -p "$1"
  (cd "$root" && "$protoc_bin" -I proto --python_out="$1" proto/flowfabric/v1/*.proto)
  cat > "$1/flowfabric/v1/__init__.py" <<'PY'
"""Generated from proto/flowfabric/v1 by sdk-python/generate.sh (protoc --python_out). Do not edit."""
PY
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
generate "$tmp"
if [[ "${1:-}" == "--check" ]]; then
  if diff -r -x __pycache__ "$tmp/flowfabric/v1" "$out" >/dev/null; then
    echo "sdk-python/src/flowfabric/v1 is up to date"
  else
    diff -r -x __pycache__ "$tmp/flowfabric/v1" "$out" | head -40 >&2 || true
    echo "sdk-python/src/flowfabric/v1 is stale: run bash sdk-python/generate.sh (or npm run generate)" >&2
    exit 1
  fi
else
  rm -rf "$out"
  cp -r "$tmp/flowfabric/v1" "$out"
  echo "generated $(cd "$root" && ls sdk-python/src/flowfabric/v1/*.py | tr '\n' ' ')"
fi
