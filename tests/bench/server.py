"""An LwM2M server for the test bench, on aiocoap (a CoAP stack independent of lwm2md).

It serves the registration interface (/rd), records every registration event, and
sends device-management requests to the registered client.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import NamedTuple

# SO_REUSEPORT would let parallel tests on the same port steal each other's
# datagrams; every bench server binds a port of its own instead.
os.environ["AIOCOAP_REUSE_PORT"] = "0"

import aiocoap  # noqa: E402
from aiocoap import Code, Message  # noqa: E402
from aiocoap import resource as aioresource  # noqa: E402

from . import linkformat  # noqa: E402

# Content formats (CoAP registry numbers used by LwM2M).
TEXT = 0
LINK = 40
OPAQUE = 42
CBOR = 60
SENML_JSON = 110
SENML_CBOR = 112
TLV = 11542
LWM2M_JSON = 11543
LWM2M_CBOR = 11544


class Response(NamedTuple):
    code: str  # dotted, e.g. "2.05"
    content_format: int | None
    payload: bytes


@dataclass
class Notification:
    time: float  # time.monotonic() at arrival
    code: str
    content_format: int | None
    payload: bytes
    observe: int | None


class Observation:
    """Notifications of one Observe, all kept in arrival order."""

    def __init__(self, request):
        self._request = request
        self.notifications: list[Notification] = []
        self._queue: asyncio.Queue[Notification] = asyncio.Queue()
        self.ended: Exception | None = None
        request.observation.register_callback(self._push, _suppress_deprecation=True)
        request.observation.register_errback(self._error, _suppress_deprecation=True)

    def _push(self, msg: Message) -> None:
        n = Notification(time.monotonic(), msg.code.dotted, _cf(msg), bytes(msg.payload), msg.opt.observe)
        self.notifications.append(n)
        self._queue.put_nowait(n)

    def _error(self, exc: Exception) -> None:
        self.ended = exc

    async def next(self, timeout: float = 15.0) -> Notification:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise ServerError(f"no notification within {timeout} s (ended: {self.ended!r})") from None

    def cancel(self) -> None:
        """Forgets the observation; the client's next notification is answered with Reset."""
        if not self._request.observation.cancelled:
            self._request.observation.cancel()


@dataclass
class RegistrationEvent:
    kind: str  # "register" | "update" | "deregister" | "send"
    time: float  # time.monotonic() at arrival
    wall: float  # time.time() at arrival
    location: str | None  # "rd/<id>" (None for a refused Register)
    query: dict[str, str]
    query_raw: list[str]
    payload: bytes
    content_format: int | None
    remote: object
    response_code: str

    @property
    def links(self) -> list[linkformat.Link]:
        return linkformat.parse(self.payload)


@dataclass
class Registration:
    location: str
    endpoint: str
    query: dict[str, str]
    payload: bytes
    remote: object
    registered_at: float
    updated_at: float
    events: list[RegistrationEvent] = field(default_factory=list)

    @property
    def links(self) -> list[linkformat.Link]:
        return linkformat.parse(self.payload)


class ServerError(Exception):
    pass


def _parse_query(options) -> tuple[dict[str, str], list[str]]:
    raw = list(options)
    out: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        out[key] = value if sep else ""
    return out, raw


def _cf(msg: Message) -> int | None:
    cf = msg.opt.content_format
    return None if cf is None else int(cf)


def _split_path(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.strip("/").split("/") if p != "")


class _RegistrationInterface(aioresource.Resource, aioresource.PathCapable):
    def __init__(self, server: "LwM2MServer"):
        super().__init__()
        self.server = server

    async def render(self, request):
        return self.server._handle(request)


class LwM2MServer:
    """One LwM2M server bound to 127.0.0.1 on a free port.

    Use as ``async with LwM2MServer() as server:``; ``server.uri`` goes into the
    client's configuration.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, request_timeout: float = 20.0):
        self.host = host
        self._bind_port = port
        self.request_timeout = request_timeout
        self.context: aiocoap.Context | None = None
        self.events: list[RegistrationEvent] = []
        self.registrations: dict[str, Registration] = {}
        # When set (e.g. Code.NOT_FOUND), Updates are answered with it and the
        # registration is forgotten, as a server that lost its state would.
        self.update_response: Code | None = None
        # When set, Registers are answered with it and nothing is registered.
        self.register_response: Code | None = None
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.current: Registration | None = None

    async def __aenter__(self) -> "LwM2MServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        self.context = await aiocoap.Context.create_server_context(
            _RegistrationInterface(self), bind=(self.host, self._bind_port), transports=["udp6"]
        )

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None

    @property
    def port(self) -> int:
        assert self.context is not None, "server not started"
        return self.context.request_interfaces[0].token_interface.message_interface._local_port()

    @property
    def uri(self) -> str:
        return f"coap://{self.host}:{self.port}"

    # Registration interface.

    def _record(self, kind, request, location, code, query, raw) -> RegistrationEvent:
        ev = RegistrationEvent(
            kind=kind,
            time=time.monotonic(),
            wall=time.time(),
            location=location,
            query=query,
            query_raw=raw,
            payload=bytes(request.payload),
            content_format=_cf(request),
            remote=request.remote,
            response_code=code.dotted,
        )
        self.events.append(ev)
        reg = self.registrations.get(location) if location else None
        if reg is not None:
            reg.events.append(ev)
        asyncio.get_running_loop().create_task(self._notify())
        return ev

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _handle(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        query, raw = _parse_query(request.opt.uri_query)
        now = time.monotonic()
        if path == ("dp",) and request.code == Code.POST:
            # Send (LwM2M 1.1): values the client pushes; recorded as a "send" event.
            self._record("send", request, None, Code.CHANGED, query, raw)
            return Message(code=Code.CHANGED)
        if path == ("rd",) and request.code == Code.POST:
            if self.register_response is not None:
                self._record("register", request, None, self.register_response, query, raw)
                return Message(code=self.register_response)
            if not query.get("ep"):
                self._record("register", request, None, Code.BAD_REQUEST, query, raw)
                return Message(code=Code.BAD_REQUEST)
            # A Register from a known endpoint replaces its old registration.
            for loc, old in list(self.registrations.items()):
                if old.endpoint == query["ep"]:
                    del self.registrations[loc]
            location = f"rd/{next(self._ids)}"
            reg = Registration(
                location=location,
                endpoint=query["ep"],
                query=dict(query),
                payload=bytes(request.payload),
                remote=request.remote,
                registered_at=now,
                updated_at=now,
            )
            self.registrations[location] = reg
            self.current = reg
            self._record("register", request, location, Code.CREATED, query, raw)
            return Message(code=Code.CREATED, location_path=location.split("/"))
        if len(path) == 2 and path[0] == "rd":
            location = "/".join(path)
            reg = self.registrations.get(location)
            if request.code == Code.POST:
                if reg is None:
                    self._record("update", request, location, Code.NOT_FOUND, query, raw)
                    return Message(code=Code.NOT_FOUND)
                if self.update_response is not None:
                    code = self.update_response
                    self._record("update", request, location, code, query, raw)
                    if not code.is_successful():
                        del self.registrations[location]
                    return Message(code=code)
                reg.query.update(query)
                if request.payload:
                    reg.payload = bytes(request.payload)
                reg.remote = request.remote
                reg.updated_at = now
                self.current = reg
                self._record("update", request, location, Code.CHANGED, query, raw)
                return Message(code=Code.CHANGED)
            if request.code == Code.DELETE:
                if reg is None:
                    self._record("deregister", request, location, Code.NOT_FOUND, query, raw)
                    return Message(code=Code.NOT_FOUND)
                self._record("deregister", request, location, Code.DELETED, query, raw)
                del self.registrations[location]
                if self.current is reg:
                    self.current = None
                return Message(code=Code.DELETED)
            return Message(code=Code.METHOD_NOT_ALLOWED)
        return Message(code=Code.NOT_FOUND)

    def mark(self) -> int:
        """A cursor for wait_event: only events after this point count."""
        return len(self.events)

    async def wait_event(
        self, kind: str | None = None, after: int = 0, timeout: float = 30.0
    ) -> RegistrationEvent:
        """The first event of ``kind`` (any kind if None) with index >= ``after``."""

        def find():
            for ev in self.events[after:]:
                if kind is None or ev.kind == kind:
                    return ev
            return None

        async def wait():
            async with self._changed:
                await self._changed.wait_for(lambda: find() is not None)
            return find()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            seen = [(e.kind, e.response_code) for e in self.events[after:]]
            raise ServerError(f"no {kind or 'registration'} event within {timeout} s; saw {seen}") from None

    async def wait_registered(self, timeout: float = 30.0) -> Registration:
        ev = await self.wait_event("register", timeout=timeout)
        reg = self.registrations.get(ev.location or "")
        if reg is None:
            raise ServerError(f"registration {ev.location} is gone")
        return reg

    # Device management.

    def _remote(self, remote):
        if remote is not None:
            return remote
        if self.current is None:
            raise ServerError("no registered client")
        return self.current.remote

    async def request(
        self,
        code: Code,
        path: str,
        *,
        payload: bytes = b"",
        content_format: int | None = None,
        accept: int | None = None,
        query: list[str] | None = None,
        remote=None,
    ) -> Response:
        assert self.context is not None, "server not started"
        msg = Message(code=code, uri_path=_split_path(path), payload=bytes(payload))
        if content_format is not None:
            msg.opt.content_format = content_format
        if accept is not None:
            msg.opt.accept = accept
        if query:
            msg.opt.uri_query = tuple(query)
        msg.remote = self._remote(remote)
        req = self.context.request(msg)
        try:
            resp = await asyncio.wait_for(req.response, self.request_timeout)
        except asyncio.TimeoutError:
            raise ServerError(f"{code} {path}: no response within {self.request_timeout} s") from None
        return Response(resp.code.dotted, _cf(resp), bytes(resp.payload))

    async def observe(
        self, path: str, accept: int | None = None, remote=None
    ) -> tuple[Response, Observation | None]:
        """Observe: the first response, and the Observation (None if the client
        answered without the Observe option, i.e. did not accept it)."""
        assert self.context is not None, "server not started"
        msg = Message(code=Code.GET, uri_path=_split_path(path), observe=0)
        if accept is not None:
            msg.opt.accept = accept
        msg.remote = self._remote(remote)
        req = self.context.request(msg)
        obs = Observation(req)
        try:
            resp = await asyncio.wait_for(req.response, self.request_timeout)
        except asyncio.TimeoutError:
            raise ServerError(f"Observe {path}: no response within {self.request_timeout} s") from None
        first = Response(resp.code.dotted, _cf(resp), bytes(resp.payload))
        if resp.opt.observe is None:
            return first, None
        return first, obs

    async def read(self, path: str, accept: int | None = None, **kw) -> Response:
        return await self.request(Code.GET, path, accept=accept, **kw)

    async def discover(self, path: str, **kw) -> Response:
        return await self.request(Code.GET, path, accept=LINK, **kw)

    async def write(
        self, path: str, payload: bytes, content_format: int, replace: bool = True, **kw
    ) -> Response:
        code = Code.PUT if replace else Code.POST
        return await self.request(code, path, payload=payload, content_format=content_format, **kw)

    async def write_attributes(self, path: str, attributes: dict[str, object], **kw) -> Response:
        query = [k if v is None else f"{k}={v}" for k, v in attributes.items()]
        return await self.request(Code.PUT, path, query=query, **kw)

    async def execute(self, path: str, args: bytes | str | None = None, **kw) -> Response:
        if isinstance(args, str):
            args = args.encode()
        return await self.request(Code.POST, path, payload=args or b"", **kw)

    async def create(self, path: str, payload: bytes, content_format: int, **kw) -> Response:
        return await self.request(Code.POST, path, payload=payload, content_format=content_format, **kw)

    async def delete(self, path: str, **kw) -> Response:
        return await self.request(Code.DELETE, path, **kw)
