"""Object 6 from the real gpsd, fed by gpsfake from tests/data/berlin.nmea, and from the
static position in the configuration."""

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bench import senml
from bench.daemon import expect_event
from bench.server import SENML_JSON

NMEA = Path(__file__).parent / "data" / "berlin.nmea"
# What berlin.nmea says: 5231.2000 N 01324.3000 E, 34.5 m MSL, 10 knots at 84.4°,
# 2026-11-25 12:35:00..09 UTC.
LAT, LON, ALT = 52.52, 13.405, 34.5
SPEED = 10 * 1852 / 3600
FIRST, LAST = 1795610100, 1795610109


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gpsfake():
    port = free_port()
    proc = subprocess.Popen(
        ["gpsfake", "-q", "-c", "0.2", "-n", "-P", str(port), str(NMEA)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"gpsfake exited with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "gpsd never listened"
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


async def read_location(server, want, timeout=60.0):
    """/6/0 as {path: value}, once `want(values)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        r = await server.read("/6/0", accept=SENML_JSON)
        assert r.code == "2.05", r
        values = senml.decode_json(r.payload)
        if want(values):
            return values
        assert time.monotonic() < deadline, f"/6/0 never became what was wanted: {values}"
        await asyncio.sleep(0.5)


async def start(server, start_daemon, location):
    d = start_daemon({"location": location})
    ev = await expect_event(server, d, "register", timeout=15)
    targets = {link.target for link in ev.links}
    assert "/6/0" in targets, targets


async def test_location_from_gpsd(server, start_daemon, gpsfake):
    await start(server, start_daemon, {"backend": "gpsd", "address": gpsfake})
    # The first fixes may be 2D, and gpsd has a climb rate only from its second 3D fix.
    values = await read_location(server, lambda v: len(v.get("/6/0/4", b"")) == 5)
    assert values["/6/0/0"] == pytest.approx(LAT, abs=1e-9)
    assert values["/6/0/1"] == pytest.approx(LON, abs=1e-9)
    assert values["/6/0/2"] == pytest.approx(ALT)
    assert values["/6/0/3"] > 0
    assert values["/6/0/6"] == pytest.approx(SPEED, abs=0.01)
    assert FIRST <= values["/6/0/5"] <= LAST
    # 3GPP TS 23.032 horizontal with vertical velocity: bearing 84°, 19 km/h, level.
    assert values["/6/0/4"] == bytes([0x10, 84, 0, 19, 0])


async def test_location_static(server, start_daemon):
    before = int(time.time())
    await start(
        server, start_daemon,
        {"backend": "static", "latitude": -43.5723, "longitude": 153.2176, "altitude": 12.5},
    )
    values = await read_location(server, lambda v: "/6/0/0" in v)
    assert values["/6/0/0"] == pytest.approx(-43.5723)
    assert values["/6/0/1"] == pytest.approx(153.2176)
    assert values["/6/0/2"] == pytest.approx(12.5)
    assert before <= values["/6/0/5"] <= time.time() + 1
    assert "/6/0/4" not in values and "/6/0/6" not in values


async def test_location_static_while_gpsd_is_down(server, start_daemon):
    await start(
        server, start_daemon,
        {"address": f"127.0.0.1:{free_port()}", "latitude": 1.5, "longitude": -2.5},
    )
    values = await read_location(server, lambda v: "/6/0/0" in v)
    assert values["/6/0/0"] == pytest.approx(1.5)
    assert values["/6/0/1"] == pytest.approx(-2.5)
