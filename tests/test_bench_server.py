"""The bench server itself, against a minimal client written on aiocoap: proves the
plumbing (registration interface, DM requests, block-wise reads) without the daemon."""

import asyncio

import aiocoap
from aiocoap import Code, Message
from aiocoap import resource

from bench import linkformat, tlv
from bench.server import TEXT, TLV, LwM2MServer

BIG = bytes(range(256)) * 12  # 3072 bytes: needs Block2 at any block size


class _Value(resource.Resource):
    def __init__(self, payload, cf):
        super().__init__()
        self.payload, self.cf = payload, cf
        self.requests = []

    async def render_get(self, request):
        self.requests.append(request)
        return Message(payload=self.payload, content_format=self.cf)

    async def render_put(self, request):
        self.requests.append(request)
        self.payload = request.payload
        return Message(code=Code.CHANGED)

    async def render_post(self, request):
        self.requests.append(request)
        return Message(code=Code.CHANGED)


class _Counter(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.value = 0

    def bump(self):
        self.value += 1
        self.updated_state()

    async def render_get(self, request):
        return Message(payload=str(self.value).encode(), content_format=TEXT)


class FakeClient:
    def __init__(self):
        self.site = resource.Site()
        self.manufacturer = _Value(b"Acme", TEXT)
        self.big = _Value(tlv.resource(0, BIG), TLV)
        self.site.add_resource(["3", "0", "0"], self.manufacturer)
        self.site.add_resource(["3", "0"], self.big)
        self.counter = _Counter()
        self.site.add_resource(["3", "0", "13"], self.counter)
        self.ctx = None

    async def start(self):
        self.ctx = await aiocoap.Context.create_server_context(
            self.site, bind=("127.0.0.1", 0), transports=["udp6"]
        )

    async def send(self, code, uri, payload=b"", cf=None):
        msg = Message(code=code, uri=uri, payload=payload)
        if cf is not None:
            msg.opt.content_format = cf
        return await self.ctx.request(msg).response

    async def stop(self):
        await self.ctx.shutdown()


async def test_register_update_deregister_and_reads():
    async with LwM2MServer() as server:
        client = FakeClient()
        await client.start()
        try:
            resp = await client.send(
                Code.POST,
                f"{server.uri}/rd?ep=fake&lt=30&lwm2m=1.1&b=U",
                b'</>;rt="oma.lwm2m",</3>;ver=1.1,</3/0>',
                cf=40,
            )
            assert resp.code == Code.CREATED
            loc = "/".join(resp.opt.location_path)
            assert loc.startswith("rd/")

            reg = await server.wait_registered(timeout=5)
            assert reg.endpoint == "fake"
            assert reg.query == {"ep": "fake", "lt": "30", "lwm2m": "1.1", "b": "U"}
            attrs = linkformat.by_target(reg.links)
            assert attrs["/"] == {"rt": "oma.lwm2m"}
            assert attrs["/3"] == {"ver": "1.1"}

            r = await server.read("/3/0/0")
            assert r == (("2.05", TEXT, b"Acme"))
            assert client.manufacturer.requests[-1].opt.accept is None

            r = await server.read("/3/0", accept=TLV)
            assert r.code == "2.05" and r.content_format == TLV
            assert tlv.decode(r.payload, "/3/0") == {"/3/0/0": BIG}
            assert int(client.big.requests[-1].opt.accept) == TLV

            r = await server.write("/3/0/0", b"Other", TEXT)
            assert r.code == "2.04"
            assert client.manufacturer.payload == b"Other"
            assert client.manufacturer.requests[-1].code == Code.PUT

            r = await server.execute("/3/0/0", "5")
            assert r.code == "2.04"
            assert client.manufacturer.requests[-1].code == Code.POST
            assert client.manufacturer.requests[-1].payload == b"5"

            r = await server.read("/3/0/7")
            assert r.code == "4.04"

            mark = server.mark()
            resp = await client.send(Code.POST, f"{server.uri}/{loc}?lt=60")
            assert resp.code == Code.CHANGED
            ev = await server.wait_event("update", after=mark, timeout=5)
            assert ev.query == {"lt": "60"} and ev.location == loc
            assert server.registrations[loc].query["lt"] == "60"

            server.update_response = Code.NOT_FOUND
            resp = await client.send(Code.POST, f"{server.uri}/{loc}")
            assert resp.code == Code.NOT_FOUND
            assert loc not in server.registrations
            server.update_response = None

            resp = await client.send(Code.DELETE, f"{server.uri}/{loc}")
            assert resp.code == Code.NOT_FOUND

            resp = await client.send(Code.POST, f"{server.uri}/rd?ep=fake&lt=30", b"</3/0>")
            loc2 = "/".join(resp.opt.location_path)
            assert loc2 != loc
            mark = server.mark()
            resp = await client.send(Code.DELETE, f"{server.uri}/{loc2}")
            assert resp.code == Code.DELETED
            ev = await server.wait_event("deregister", after=mark, timeout=5)
            assert ev.location == loc2
            assert server.registrations == {}
            assert [e.kind for e in server.events] == [
                "register", "update", "update", "deregister", "register", "deregister"
            ]
        finally:
            await client.stop()


async def test_observe_collects_every_notification():
    async with LwM2MServer() as server:
        client = FakeClient()
        await client.start()
        try:
            await client.send(Code.POST, f"{server.uri}/rd?ep=fake&lt=30", b"</3/0>")
            first, obs = await server.observe("/3/0/13")
            assert first.code == "2.05" and first.payload == b"0"
            assert obs is not None
            client.counter.bump()
            n1 = await obs.next(timeout=5)
            client.counter.bump()
            n2 = await obs.next(timeout=5)
            assert (n1.payload, n2.payload) == (b"1", b"2")
            assert n1.observe is not None and n2.observe is not None
            assert [n.payload for n in obs.notifications] == [b"1", b"2"]
            obs.cancel()

            first, obs = await server.observe("/3/0/0")
            assert first.code == "2.05" and obs is None
        finally:
            await client.stop()


async def test_register_without_endpoint_is_refused():
    async with LwM2MServer() as server:
        client = FakeClient()
        await client.start()
        try:
            resp = await client.send(Code.POST, f"{server.uri}/rd?lt=30", b"</3/0>")
            assert resp.code == Code.BAD_REQUEST
            assert server.registrations == {}
        finally:
            await client.stop()


async def test_servers_get_distinct_ports():
    async with LwM2MServer() as a, LwM2MServer() as b:
        assert a.port != b.port and a.port > 0 and b.port > 0


async def test_wait_event_times_out_with_a_clear_error():
    async with LwM2MServer() as server:
        try:
            await server.wait_event("register", timeout=0.2)
        except Exception as e:
            assert "no register event" in str(e)
        else:
            raise AssertionError("wait_event returned without an event")
        await asyncio.sleep(0)
