#!/usr/bin/env bash
# Regenerates the Python message classes from proto/ into examples/python-worker/gen.
# Needs only protoc (Debian: protobuf-compiler); no grpc plugin: the worker calls the Session
# method through channel.stream_stream with the message classes' (de)serializers.
#
#   bash examples/python-worker/generate.sh            # regenerate in place
#   bash examples/python-worker/generate.sh --check    # exit 1 if the committed gen/ is stale
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
protoc_bin="${PROTOC:-protoc}"
if ! command -v "$protoc_bin" >/dev/null 2>&1; then
  echo "protoc not found: sudo apt-get install -y protobuf-compiler python3-protobuf python3-grpcio" >&2
  exit 2
fi

generate() { # $1 = output dir
  mkdir -p "$1"
  (cd "$root" && "$protoc_bin" -I proto --python_out="$1" proto/flowfabric/v1/*.proto)
  # Make gen/flowfabric and gen/flowfabric/v1 importable as regular packages.
  touch "$1/flowfabric/__init__.py" "$1/flowfabric/v1/__init__.py"
}

if [[ "${1:-}" == "--check" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  if diff -rq "$tmp/flowfabric" "$here/gen/flowfabric" -x __pycache__; then
    echo "examples/python-worker/gen is up to date"
  else
    echo "examples/python-worker/gen is stale: run bash examples/python-worker/generate.sh" >&2
    exit 1
  fi
else
  rm -rf "$here/gen/flowfabric"
  generate "$here/gen"
  echo "generated $(cd "$root" && ls examples/python-worker/gen/flowfabric/v1/*_pb2.py | tr '\n' ' ')"
fi
