"""Channels and RPC callables, built once from the generated service descriptors.

No grpc plugin is needed: every method's path and (de)serializers come from the descriptor of its
service (``flowfabric.v1.*_pb2.DESCRIPTOR``), so adding an RPC to proto/ needs no change here.
Channel options are the ones docs/protocol.md asks for (keepalive, receive limit, short grpc
reconnect backoff); an ``auth_token`` travels as ``authorization: Bearer <token>`` metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import grpc

from .v1 import execution_pb2, signal_pb2, stream_pb2, worker_pb2

_MODULES = (execution_pb2, signal_pb2, stream_pb2, worker_pb2)

#: Receive/send limit: above the gateway's default max_message_bytes (8 MiB) so its limit bites first.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ChannelConfig:
    """How to reach a gateway. ``address`` is any gRPC target (``host:port``,
    ``ipv4:127.0.0.1:1,127.0.0.1:2``, ``dns:///gw.internal:50051``)."""

    address: str = "127.0.0.1:50051"
    #: Bearer token sent as ``authorization`` metadata on every call (when the gateway requires auth).
    auth_token: str = ""
    #: TLS: True for the system roots, or explicit ``grpc.ssl_channel_credentials(...)``.
    tls: Any = False
    #: Extra ``(key, value)`` channel options, appended after the SDK's.
    channel_options: Tuple[Tuple[str, Any], ...] = ()

    def options(self) -> List[Tuple[str, Any]]:
        return [
            # HTTP/2 PINGs every 10 s, dead after 5 s without an ack (protocol rule 11).
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # The SDK's own loops do the backoff (rule 13); keep grpc's short.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 5_000),
            ("grpc.enable_retries", 0),
            *self.channel_options,
        ]

    def credentials(self) -> Optional[grpc.ChannelCredentials]:
        if self.tls is True:
            return grpc.ssl_channel_credentials()
        if isinstance(self.tls, grpc.ChannelCredentials):
            return self.tls
        return None

    def metadata(self, extra: Sequence[Tuple[str, str]] = ()) -> List[Tuple[str, str]]:
        md = [("authorization", f"Bearer {self.auth_token}")] if self.auth_token else []
        md.extend(extra)
        return md

    def channel(self) -> grpc.Channel:
        creds = self.credentials()
        if creds is not None:
            return grpc.secure_channel(self.address, creds, options=self.options())
        return grpc.insecure_channel(self.address, options=self.options())

    def aio_channel(self) -> "grpc.aio.Channel":
        creds = self.credentials()
        if creds is not None:
            return grpc.aio.secure_channel(self.address, creds, options=self.options())
        return grpc.aio.insecure_channel(self.address, options=self.options())


def _method_table() -> Dict[str, Tuple[str, Any, Any, bool, bool]]:
    """``"ExecutionService.CreateExecution"`` -> (path, request class, response class, client
    streaming, server streaming), for every method of every service in the generated modules."""
    table = {}
    for module in _MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                req = _message_class(m.input_type)
                res = _message_class(m.output_type)
                table[f"{service.name}.{m.name}"] = (
                    f"/{service.full_name}/{m.name}", req, res, m.client_streaming, m.server_streaming)
    return table


def _message_class(desc):
    for module in _MODULES + (__import__("flowfabric.v1.common_pb2", fromlist=["x"]),):
        if module.DESCRIPTOR.name == desc.file.name:
            return getattr(module, desc.name)
    raise LookupError(desc.full_name)


METHODS = _method_table()


def bind(channel, name: str):
    """The callable of one RPC (``"StreamService.TailStream"``) on a sync or aio channel."""
    path, req, res, client_streaming, server_streaming = METHODS[name]
    factory = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[(client_streaming, server_streaming)]
    return factory(path, request_serializer=req.SerializeToString, response_deserializer=res.FromString)
