"""The SDK's version, sent in Hello.sdk."""

__version__ = "0.1.0"
SDK_NAME = f"flowfabric-python/{__version__}"
