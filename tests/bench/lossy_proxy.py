"""A UDP proxy between one client and one server that drops chosen datagrams.

Each datagram is described by the DTLS records it carries (RFC 6347 §4.1: a 13-byte
header, content type first, epoch in bytes 3-4, length in bytes 11-12; a plaintext
handshake record's first byte is the handshake type), e.g. ``ClientHello`` or
``ServerHello+Certificate+ServerHelloDone`` or ``ChangeCipherSpec+Finished``; a
handshake record of epoch 1 or later is encrypted, and in a handshake it is the Finished.

A rule decides, for each datagram, whether it is dropped: ``drop(direction, kinds, seen)``
where ``direction`` is ``"up"`` (client to server) or ``"down"``, ``kinds`` the record
names and ``seen`` how many datagrams of that same description went that way before.
Everything that went through or was dropped is recorded in ``log``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Callable

HANDSHAKE_TYPES = {
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    3: "HelloVerifyRequest",
    4: "NewSessionTicket",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
}
CONTENT_TYPES = {20: "ChangeCipherSpec", 21: "Alert", 22: "Handshake", 23: "ApplicationData"}

Rule = Callable[[str, str, int], bool]


def describe(datagram: bytes) -> str:
    """The records of a DTLS datagram, joined with '+'; '?' for what does not parse."""
    names = []
    rest = datagram
    while rest:
        if len(rest) < 13:
            names.append("?")
            break
        content_type = rest[0]
        epoch = int.from_bytes(rest[3:5], "big")
        length = int.from_bytes(rest[11:13], "big")
        body = rest[13 : 13 + length]
        rest = rest[13 + length :]
        if content_type == 22 and epoch == 0 and body:
            names.append(HANDSHAKE_TYPES.get(body[0], f"Handshake{body[0]}"))
        elif content_type == 22:
            names.append("Finished")
        else:
            names.append(CONTENT_TYPES.get(content_type, f"Content{content_type}"))
    return "+".join(names)


@dataclass
class Passage:
    direction: str
    kinds: str
    dropped: bool


class LossyProxy:
    """Listens on ``host``:``port`` (0: any free port) and forwards to ``upstream``.

    The client is whoever last sent to the proxy; the server's datagrams go back to it.
    """

    def __init__(self, upstream: tuple[str, int], rule: Rule | None = None, host: str = "127.0.0.1"):
        self.upstream = upstream
        self.rule: Rule = rule or (lambda direction, kinds, seen: False)
        self.host = host
        self.log: list[Passage] = []
        self._seen: Counter = Counter()
        self._client: tuple[str, int] | None = None
        self._front: asyncio.DatagramTransport | None = None
        self._back: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> "LossyProxy":
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=(self.host, 0)
        )
        self._back, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), remote_addr=self.upstream
        )
        return self

    async def __aexit__(self, *exc) -> None:
        for t in (self._front, self._back):
            if t is not None:
                t.close()

    @property
    def port(self) -> int:
        assert self._front is not None, "proxy not started"
        return self._front.get_extra_info("sockname")[1]

    def passed(self, direction: str, kinds: str) -> int:
        return sum(1 for p in self.log if p.direction == direction and p.kinds == kinds and not p.dropped)

    def delivered_later(self, lost: Passage) -> bool:
        """Whether every record of a dropped datagram went through afterwards (a resent
        flight may be packed into datagrams differently)."""
        after = self.log[self.log.index(lost) + 1 :]
        delivered = {
            name for p in after if p.direction == lost.direction and not p.dropped for name in p.kinds.split("+")
        }
        return set(lost.kinds.split("+")) <= delivered

    def dropped(self) -> list[Passage]:
        return [p for p in self.log if p.dropped]

    def _decide(self, direction: str, data: bytes) -> bool:
        kinds = describe(data)
        seen = self._seen[(direction, kinds)]
        self._seen[(direction, kinds)] += 1
        dropped = bool(self.rule(direction, kinds, seen))
        self.log.append(Passage(direction, kinds, dropped))
        return dropped

    def _from_client(self, data: bytes, addr) -> None:
        self._client = addr
        if not self._decide("up", data) and self._back is not None:
            self._back.sendto(data)

    def _from_server(self, data: bytes, addr) -> None:
        if self._client is None or self._front is None:
            return
        if not self._decide("down", data):
            self._front.sendto(data, self._client)


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram):
        self.on_datagram = on_datagram

    def datagram_received(self, data, addr) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc) -> None:
        # ICMP port unreachable from a peer that is gone: the DTLS timers deal with it.
        pass
