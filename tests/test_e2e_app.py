"""A local application owning resources over org.lwm2md.Application1, on a private
dbus-daemon standing in for the system bus: it sets values the server reads and
observes, creates and deletes instances, and answers the server's Writes and Executes
(tests/bench/app.py, dbus-python)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import dbus
import pytest

from bench import linkformat
from bench.bus import PrivateBus
from bench.daemon import expect_event

TEXT = 0
IFACE = "org.lwm2md.Application1"

ROOMS = """<?xml version="1.0" encoding="UTF-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://openmobilealliance.org/tech/profiles/LWM2M-v1_1.xsd">
  <Object ObjectType="MODefinition">
    <Name>Rooms</Name><Description1></Description1><ObjectID>33010</ObjectID>
    <ObjectURN>urn:oma:lwm2m:x:33010</ObjectURN><LWM2MVersion>1.1</LWM2MVersion><ObjectVersion>1.0</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="0"><Name>Occupancy</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type>Integer</Type><RangeEnumeration></RangeEnumeration><Units></Units><Description></Description></Item>
      <Item ID="1"><Name>Mode</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type>String</Type><RangeEnumeration></RangeEnumeration><Units></Units><Description></Description></Item>
      <Item ID="2"><Name>Ventilate</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type></Type><RangeEnumeration></RangeEnumeration><Units></Units><Description></Description></Item>
    </Resources>
  </Object>
</LWM2M>
"""


@pytest.fixture
def bus(tmp_path):
    b = PrivateBus(tmp_path)
    yield b
    b.close()


class Application:
    """tests/bench/app.py in a process of its own, plus direct calls from the test."""

    def __init__(self, address: str, events: Path):
        self.address = address
        self.events = events
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.app", address, str(events)],
            cwd=Path(__file__).parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", f"the application did not start: {line!r} {self.proc.stderr.read()}"
        self.conn = dbus.bus.BusConnection(address)

    def iface(self):
        obj = self.conn.get_object("org.lwm2md.Daemon", "/org/lwm2md/Daemon", introspect=False)
        return dbus.Interface(obj, IFACE)

    async def call(self, method: str, *args, signature: str):
        return await asyncio.to_thread(lambda: getattr(self.iface(), method)(*args, signature=signature))

    async def error_of(self, method: str, *args, signature: str) -> str:
        try:
            await self.call(method, *args, signature=signature)
        except dbus.exceptions.DBusException as e:
            return e.get_dbus_name()
        raise AssertionError(f"{method}{args} succeeded")

    def signals(self) -> list[dict]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines()]

    async def signal(self, predicate, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for s in self.signals():
                if predicate(s):
                    return s
            assert time.monotonic() < deadline, f"no such signal: {self.signals()}"
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.conn.close()


async def until(check, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.1)


async def test_an_application_owns_an_object(server, bus, start_daemon, tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "rooms.xml").write_text(ROOMS)
    config = {
        "object_dirs": [str(objects)],
        # The application has 3 s to answer a server's Write or Execute.
        "resource": [{"path": "/33010", "app": True, "timeout": 3}],
    }
    daemon = start_daemon(config, env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    ev = await expect_event(server, daemon, "register", timeout=20)
    assert "/33010" in linkformat.by_target(ev.links), ev.payload
    app = Application(bus.address, tmp_path / "signals.jsonl")
    try:
        # The daemon's name may come a moment after the registration.
        async def created():
            try:
                await app.call("CreateInstance", "/33010/1", signature="s")
                return True
            except dbus.exceptions.DBusException as e:
                assert e.get_dbus_name() == "org.freedesktop.DBus.Error.ServiceUnknown", e
                return False

        mark = server.mark()
        await until(created, "CreateInstance")
        ev = await expect_event(server, daemon, "update", after=mark, timeout=20)
        assert "/33010/1" in linkformat.by_target(ev.links), ev.payload

        # A value the application sets is what the server reads and observes.
        await app.call("SetValue", "/33010/1/0", dbus.Int32(2, variant_level=1), signature="sv")
        r = await server.read("/33010/1/0", accept=TEXT)
        assert (r.code, r.payload) == ("2.05", b"2")
        first, obs = await server.observe("/33010/1/0", accept=TEXT)
        assert first.payload == b"2" and obs is not None
        await app.call("SetValue", "/33010/1/0", dbus.Int64(3, variant_level=1), signature="sv")
        n = await obs.next(timeout=20)
        assert (n.code, n.payload) == ("2.05", b"3")
        obs.cancel()

        # Typed, and only what the application owns.
        err = await app.error_of("SetValue", "/33010/1/0", dbus.String("three", variant_level=1), signature="sv")
        assert err == f"{IFACE}.Error.TypeMismatch"
        err = await app.error_of("SetValue", "/3/0/0", dbus.String("ACME", variant_level=1), signature="sv")
        assert err == f"{IFACE}.Error.NotOwned"
        err = await app.error_of("SetValue", "/33010/7/0", dbus.Int32(1, variant_level=1), signature="sv")
        assert err == f"{IFACE}.Error.NotFound"
        err = await app.error_of("Answer", dbus.UInt64(999999), "2.04", signature="ts")
        assert err == f"{IFACE}.Error.UnknownRequest"

        # A server's Write goes to the application, whose answer is the response.
        assert (await server.write("/33010/1/1", b"eco", TEXT)).code == "2.04"
        s = await app.signal(lambda s: s["signal"] == "Write" and s["value"] == "eco")
        assert s["path"] == "/33010/1/1"
        assert (await server.read("/33010/1/1")).payload == b"eco"
        assert (await server.write("/33010/1/1", b"refuse", TEXT)).code == "4.00"
        assert (await server.read("/33010/1/1")).payload == b"eco"
        # An answer that takes longer than the server's ACK_TIMEOUT: an empty ACK, then
        # the outcome as a separate response (RFC 7252 §5.2.2), which aiocoap matches.
        assert (await server.write("/33010/1/1", b"slow", TEXT)).code == "2.04"
        assert "empty ACK, separate response to follow" in daemon.log()
        assert (await server.read("/33010/1/1")).payload == b"slow"

        # Execute with arguments.
        assert (await server.execute("/33010/1/2", "5='fast'")).code == "2.04"
        s = await app.signal(lambda s: s["signal"] == "Execute")
        assert (s["path"], s["arguments"]) == ("/33010/1/2", "5='fast'")

        # An application that does not answer: 5.03 after the timeout, and a log line.
        assert (await server.write("/33010/1/1", b"hang", TEXT)).code == "5.03"
        assert "no answer from the application in 3 s" in daemon.log()
        # The server may not shape what the application owns.
        assert (await server.delete("/33010/1")).code == "4.05"

        # An application that leaves the bus: the same bounded wait; one that comes back
        # is heard again, without a restart of the daemon.
        app.close()
        assert (await server.execute("/33010/1/2")).code == "5.03"
        app = Application(bus.address, tmp_path / "signals-again.jsonl")
        assert (await server.write("/33010/1/1", b"back", TEXT)).code == "2.04"
        assert (await server.read("/33010/1/1")).payload == b"back"

        # Deleting the instance: an Update without it, and it is gone for the server.
        mark = server.mark()
        await app.call("DeleteInstance", "/33010/1", signature="s")
        ev = await expect_event(server, daemon, "update", after=mark, timeout=20)
        assert "/33010/1" not in linkformat.by_target(ev.links), ev.payload
        assert (await server.read("/33010/1/0")).code == "4.04"
        err = await app.error_of("DeleteInstance", "/33010/1", signature="s")
        assert err == f"{IFACE}.Error.NotFound"
        err = await app.error_of("CreateInstance", "/3/1", signature="s")
        assert err == f"{IFACE}.Error.NotOwned"
        assert daemon.alive()
    finally:
        app.close()
