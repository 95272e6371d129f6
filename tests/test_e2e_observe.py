"""Observe and notification attributes, end to end (RFC 7641 through aiocoap)."""

import asyncio
import time

from bench import tlv

TLV = 11542


async def test_observe_notifies_a_written_value(registered):
    server, _daemon, _reg = registered
    first, obs = await server.observe("/1/0/1")
    assert first.code == "2.05" and first.payload == b"300"
    assert obs is not None, "the client did not accept the observation"
    resp = await server.write("/1/0/1", b"240", 0)
    assert resp.code == "2.04"
    n = await obs.next(timeout=10)
    assert (n.code, n.content_format, n.payload) == ("2.05", 0, b"240")
    assert n.observe is not None and n.observe > 0
    obs.cancel()


async def test_pmax_forces_notifications_of_an_unchanged_instance(registered):
    server, _daemon, _reg = registered
    assert (await server.write_attributes("/1/0", {"pmax": 1})).code == "2.04"
    first, obs = await server.observe("/1/0", accept=TLV)
    assert obs is not None
    start = time.monotonic()
    n1 = await obs.next(timeout=10)
    n2 = await obs.next(timeout=10)
    # pmax=1 s: two notifications take about 2 s; generous bounds for a busy machine.
    assert 1.0 <= time.monotonic() - start < 8.0
    assert n2.observe > n1.observe
    for n in (n1, n2):
        values = tlv.decode(n.payload, "/1/0")
        assert tlv.to_int(values["/1/0/1"]) == 300
    obs.cancel()


async def test_write_attributes_errors(registered):
    server, _daemon, _reg = registered
    assert (await server.write_attributes("/1/0/1", {"pmin": 30, "pmax": 10})).code == "4.00"
    assert (await server.write_attributes("/1/0/1", {"nonsense": 1})).code == "4.00"
    assert (await server.write_attributes("/1/9", {"pmin": 1})).code == "4.04"
    assert (await server.write_attributes("/3/0/1", {"gt": 5})).code == "4.00"
    assert (await server.write_attributes("/1/0/1", {"pmin": 5})).code == "2.04"
    resp = await server.discover("/1/0")
    assert "</1/0/1>;pmin=5" in resp.payload.decode()
