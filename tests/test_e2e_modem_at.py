"""The daemon with [connectivity] backend = "at" against the AT-modem simulator on a pty:
the modem is set up, identified and polled while the daemon stays registered and
answers, and object 4 shows what the modem reports."""

import asyncio
import time

import pytest

from bench import senml
from bench.at_modem import AtModem
from bench.daemon import expect_event
from bench.server import SENML_JSON


@pytest.fixture
def modem():
    m = AtModem(slow={'AT+QENG="servingcell"': 1.0})
    yield m
    m.close()


async def wait_log(daemon, text, timeout=60.0):
    deadline = time.monotonic() + timeout
    while text not in daemon.log():
        assert daemon.alive(), "the daemon exited"
        assert time.monotonic() < deadline, f"{text!r} never logged"
        await asyncio.sleep(0.2)


async def test_at_modem_is_polled(server, start_daemon, modem):
    d = start_daemon(
        {"connectivity": {"backend": "at", "port": modem.path, "baud": 115200, "interval": 1}}
    )
    await expect_event(server, d, "register", timeout=15)
    await wait_log(d, "modem identified")
    deadline = time.monotonic() + 30
    while True:
        r = await server.read("/4/0", accept=SENML_JSON)
        values = senml.decode_json(r.payload) if r.code == "2.05" else {}
        if "/4/0/2" in values:
            break
        assert time.monotonic() < deadline, f"object 4 never filled: {values}"
        await asyncio.sleep(0.3)
    assert values["/4/0/0"] == 6  # LTE-FDD (+CEREG AcT 7)
    assert values["/4/0/2"] == -98  # RSRP from AT+QENG="servingcell", dBm
    assert values["/4/0/10"] == 262 and values["/4/0/9"] == 1  # SMCC, SMNC
    assert values["/4/0/8"] == 0x8F381C5  # serving cell ID
    assert values["/4/0/4/0"] == "10.45.12.7"  # AT+CGPADDR
    assert values["/4/0/7/0"] == "internet.telekom"  # APN of the connected context
    # A slow modem does not hold up the protocol.
    r = await server.read("/3/0/0")
    assert r.code == "2.05"
    for command in ("ATE0", "AT+CMEE=1", "AT+CGMI", "AT+CEREG?", 'AT+QENG="servingcell"'):
        assert command in modem.commands, modem.commands
