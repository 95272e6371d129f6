"""A bootstrap server on aiocoap: answers the client's Bootstrap-Request (POST /bs) and
then runs a provisioning script against the client (Bootstrap-Delete, -Write, -Discover,
-Read, -Finish), recording every exchange. Payloads come from the bench's own TLV encoder.

Given a ``pack``, it also answers the LwM2M 1.2 Bootstrap-Pack-Request (``GET
/bspack?ep=``) with that SenML pack (from the bench's own SenML encoder); without one it
answers 4.04, as a server before 1.2 would. Both kinds of request are recorded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiocoap
import aiocoap.resource as aioresource
from aiocoap import Code, Message

from . import senml, tlv

TLV = 11542
LINK_FORMAT = 40
SENML_JSON = 110
SENML_CBOR = 112


@dataclass
class Exchange:
    method: str
    path: str
    code: str
    payload: bytes


@dataclass
class BootstrapRequest:
    endpoint: str
    query: dict[str, str]
    remote: object
    time: float = field(default_factory=time.monotonic)
    # The Bootstrap-Pack-Request's Accept; None for a Bootstrap-Request.
    accept: int | None = None


def account_pack(instance: int, uri: str, ssid: int, lifetime: int, *,
                 server_instance: int = 0, mode: int = 3, identity: bytes = b"",
                 key: bytes = b"") -> list[dict]:
    """SenML records of a server account (/0/x and /1/y) with absolute names, as a
    Bootstrap-Pack carries them."""
    sec = f"/0/{instance}/"
    srv = f"/1/{server_instance}/"
    records = [
        {"bn": sec, "n": "0", "vs": uri},
        {"n": "1", "vb": False},
        {"n": "2", "v": mode},
        {"n": "10", "v": ssid},
    ]
    if identity:
        records += [{"n": "3", "vd": identity}, {"n": "5", "vd": key}]
    records += [
        {"bn": srv, "n": "0", "v": ssid},
        {"n": "1", "v": lifetime},
        {"n": "6", "vb": True},
        {"n": "7", "vs": "U"},
    ]
    return records


def security_instance(instance: int, uri: str, ssid: int, *, bootstrap: bool = False,
                      mode: int = 3, identity: bytes = b"", key: bytes = b"") -> bytes:
    """A Security object instance (/0/x) as TLV."""
    resources = [
        tlv.resource(0, tlv.enc_str(uri)),
        tlv.resource(1, tlv.enc_bool(bootstrap)),
        tlv.resource(2, tlv.enc_int(mode)),
        tlv.resource(3, identity),
        tlv.resource(5, key),
    ]
    if not bootstrap:
        resources.append(tlv.resource(10, tlv.enc_int(ssid)))
    return tlv.object_instance(instance, resources)


def server_instance(instance: int, ssid: int, lifetime: int, binding: str = "U") -> bytes:
    """A Server object instance (/1/x) as TLV."""
    return tlv.object_instance(instance, [
        tlv.resource(0, tlv.enc_int(ssid)),
        tlv.resource(1, tlv.enc_int(lifetime)),
        tlv.resource(6, tlv.enc_bool(True)),
        tlv.resource(7, tlv.enc_str(binding)),
    ])


class _Root(aioresource.Resource, aioresource.PathCapable):
    def __init__(self, server: "BootstrapServer"):
        super().__init__()
        self.server = server

    async def render(self, request):
        return self.server._handle(request)


class BootstrapServer:
    """``async with BootstrapServer(script) as bs``; ``bs.uri`` goes into the client's
    configuration as the ``bootstrap = true`` server. ``script(bs, remote)`` is awaited
    after each accepted Bootstrap-Request. ``pack`` (SenML records) is the answer to a
    Bootstrap-Pack-Request, in the format the client accepts."""

    def __init__(self, script=None, host: str = "127.0.0.1", request_timeout: float = 20.0,
                 pack: list[dict] | None = None):
        self.script = script
        self.pack = pack
        self.pack_requests: list[BootstrapRequest] = []
        self.host = host
        self.request_timeout = request_timeout
        self.context: aiocoap.Context | None = None
        self.requests: list[BootstrapRequest] = []
        self.exchanges: list[Exchange] = []
        self.finished = asyncio.Event()
        self.errors: list[BaseException] = []
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> "BootstrapServer":
        self.context = await aiocoap.Context.create_server_context(
            _Root(self), bind=(self.host, 0), transports=["udp6"]
        )
        return self

    async def __aexit__(self, *exc) -> None:
        for t in self._tasks:
            t.cancel()
        if self.context is not None:
            await self.context.shutdown()

    @property
    def uri(self) -> str:
        assert self.context is not None
        port = self.context.request_interfaces[0].token_interface.message_interface._local_port()
        return f"coap://{self.host}:{port}"

    def _handle(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        query = dict(q.split("=", 1) for q in request.opt.uri_query if "=" in q)
        if path == ("bspack",) and request.code == Code.GET:
            return self._pack(request, query)
        if path != ("bs",) or request.code != Code.POST:
            return Message(code=Code.NOT_FOUND)
        if not query.get("ep"):
            return Message(code=Code.BAD_REQUEST)
        self.requests.append(BootstrapRequest(query["ep"], query, request.remote))
        self._tasks.append(asyncio.get_running_loop().create_task(self._run(request.remote)))
        return Message(code=Code.CHANGED)

    def _pack(self, request: Message, query: dict[str, str]) -> Message:
        accept = request.opt.accept
        accept = int(accept) if accept is not None else None
        self.pack_requests.append(BootstrapRequest(query.get("ep", ""), query, request.remote, accept=accept))
        if self.pack is None:
            return Message(code=Code.NOT_FOUND)
        if not query.get("ep"):
            return Message(code=Code.BAD_REQUEST)
        if accept in (None, SENML_CBOR):
            payload, fmt = senml.encode_cbor(self.pack), SENML_CBOR
        elif accept == SENML_JSON:
            payload, fmt = senml.encode_json(self.pack), SENML_JSON
        else:
            return Message(code=Code.NOT_ACCEPTABLE)
        self.finished.set()
        return Message(code=Code.CONTENT, payload=payload, content_format=fmt)

    async def _run(self, remote) -> None:
        try:
            await self.script(self, remote)
        except BaseException as e:  # reported by the test
            self.errors.append(e)
            raise
        finally:
            self.finished.set()

    async def request(self, remote, code: Code, path: str, payload: bytes = b"",
                      content_format: int | None = None, accept: int | None = None) -> Exchange:
        msg = Message(code=code, uri_path=tuple(p for p in path.split("/") if p), payload=payload)
        if content_format is not None:
            msg.opt.content_format = content_format
        if accept is not None:
            msg.opt.accept = accept
        msg.remote = remote
        resp = await asyncio.wait_for(self.context.request(msg).response, self.request_timeout)
        ex = Exchange(str(code), path, resp.code.dotted, bytes(resp.payload))
        self.exchanges.append(ex)
        return ex

    async def delete(self, remote, path: str) -> Exchange:
        return await self.request(remote, Code.DELETE, path)

    async def write(self, remote, path: str, payload: bytes, content_format: int = TLV) -> Exchange:
        return await self.request(remote, Code.PUT, path, payload, content_format=content_format)

    async def discover(self, remote, path: str = "/") -> Exchange:
        return await self.request(remote, Code.GET, path, accept=LINK_FORMAT)

    async def read(self, remote, path: str, accept: int = TLV) -> Exchange:
        return await self.request(remote, Code.GET, path, accept=accept)

    async def finish(self, remote) -> Exchange:
        return await self.request(remote, Code.POST, "/bs")
