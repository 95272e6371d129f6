"""An LwM2M bench server that accepts clients over DTLS-PSK (aiocoap's tinydtls server).

The registration interface and the recorded events are those of LwM2MServer; only the
transport differs. aiocoap 0.4.17's DTLS server does not recognise the address of a
client's session as one it can send requests to; ``_route_requests_over_sessions``
teaches it, so device-management requests (``read``, ``write``, ...) work as on the
plain server.
"""

from __future__ import annotations

import socket

import aiocoap
from aiocoap.credentials import CredentialsMap
from aiocoap.transports.tinydtls_server import _AddressDTLS

from .server import LwM2MServer, _RegistrationInterface


class DtlsLwM2MServer(LwM2MServer):
    """Accepts one PSK identity and key; ``uri`` is a coaps:// URI."""

    def __init__(self, identity: bytes, key: bytes, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self.identity = identity
        self.key = key

    async def start(self) -> None:
        # The transport binds the given port + 1 (5683 -> 5684), so port 0 would become 1:
        # find a free port and pass the one below it.
        port = self._bind_port or _free_udp_port(self.host)
        credentials = CredentialsMap()
        credentials.load_from_dict({":client": {"dtls": {"psk": self.key, "client-identity": self.identity}}})
        self.context = await aiocoap.Context.create_server_context(
            _RegistrationInterface(self),
            bind=(self.host, port - 1),
            transports=["tinydtls_server"],
            server_credentials=credentials,
        )
        _route_requests_over_sessions(self.context)

    @property
    def port(self) -> int:
        assert self.context is not None, "server not started"
        return self.context.request_interfaces[0].token_interface.message_interface._pool._transport.get_extra_info(
            "sockname"
        )[1]

    @property
    def uri(self) -> str:
        return f"coaps://{self.host}:{self.port}"


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _route_requests_over_sessions(context: aiocoap.Context) -> None:
    """Lets requests whose remote is a client's DTLS session (``request.remote`` of what
    the client sent) go out through that session."""
    interface = context.request_interfaces[0].token_interface.message_interface
    pool = interface._pool

    async def recognize_remote(remote) -> bool:
        return isinstance(remote, _AddressDTLS) and remote._protocol is pool

    interface.recognize_remote = recognize_remote
