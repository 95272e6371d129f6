"""Registration interface of the real lwm2md binary against the bench server."""

import signal

import pytest
from aiocoap import Code

from bench import linkformat
from bench.daemon import expect_event
from bench.server import LINK, TEXT


async def test_register_parameters_and_object_list(registered, endpoint):
    server, daemon, reg = registered
    ev = reg.events[0]
    assert ev.kind == "register" and ev.response_code == "2.01"
    assert ev.query["ep"] == endpoint
    assert ev.query["lt"] == "300"
    assert ev.query["lwm2m"] == "1.1"
    assert ev.query["b"] == "U"
    assert ev.content_format == LINK

    links = linkformat.by_target(ev.links)
    assert links["/"].get("rt") == "oma.lwm2m"
    assert links["/1"].get("ver") == "1.1"
    assert links["/3"].get("ver") == "1.1"
    assert "/1/0" in links
    assert "/3/0" in links
    # The Security object is never announced to a server.
    assert not any(t == "/0" or t.startswith("/0/") for t in links)


async def test_update_arrives_before_the_lifetime_expires(server, start_daemon):
    daemon = start_daemon({"server": [{"lifetime": 20}]})
    reg_ev = await expect_event(server, daemon, "register", timeout=15)
    assert reg_ev.query["lt"] == "20"
    upd = await expect_event(server, daemon, "update", after=server.events.index(reg_ev) + 1, timeout=20)
    assert upd.location == reg_ev.location
    assert upd.response_code == "2.04"
    assert upd.time - reg_ev.time < 20
    assert "ep" not in upd.query


async def test_write_lifetime_sends_update_with_new_lifetime(registered):
    server, daemon, reg = registered
    mark = server.mark()
    r = await server.write("/1/0/1", b"45", TEXT)
    assert r.code == "2.04"
    upd = await expect_event(server, daemon, "update", after=mark)
    assert upd.query.get("lt") == "45"
    assert upd.location == reg.location
    r = await server.read("/1/0/1")
    assert r.code == "2.05" and r.payload == b"45"


async def test_registration_update_trigger(registered):
    server, daemon, reg = registered
    mark = server.mark()
    r = await server.execute("/1/0/8")
    assert r.code == "2.04"
    upd = await expect_event(server, daemon, "update", after=mark)
    assert upd.location == reg.location
    assert upd.response_code == "2.04"


async def test_registers_again_when_the_server_forgot_it(registered, endpoint):
    server, daemon, reg = registered
    server.update_response = Code.NOT_FOUND
    mark = server.mark()
    assert (await server.execute("/1/0/8")).code == "2.04"
    upd = await expect_event(server, daemon, "update", after=mark)
    assert upd.response_code == "4.04"
    server.update_response = None
    again = await expect_event(server, daemon, "register", after=mark)
    assert again.query["ep"] == endpoint
    assert again.location != reg.location
    assert again.location in server.registrations
    r = await server.read("/3/0/0")
    assert r.code == "2.05"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_deregisters_and_exits_0_on_signal(registered, sig):
    server, daemon, reg = registered
    mark = server.mark()
    daemon.signal(sig)
    ev = await server.wait_event("deregister", after=mark, timeout=15)
    assert ev.location == reg.location
    assert ev.response_code == "2.02"
    assert await daemon.wait(timeout=15) == 0
    assert reg.location not in server.registrations
