"""Generated from proto/flowfabric/v1 by sdk-python/generate.sh (protoc --python_out). Do not edit."""
