"""The daemon with [modem] backend = "at" against the AT-modem simulator on a pty: the
modem is set up, identified and polled while the daemon stays registered and answers."""

import asyncio
import time

import pytest

from bench.at_modem import AtModem
from bench.daemon import expect_event


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
    d = start_daemon({"modem": {"backend": "at", "port": modem.path, "baud": 115200, "interval": 1}})
    await expect_event(server, d, "register", timeout=15)
    await wait_log(d, "modem identified")
    await wait_log(d, 'imei: Some("867698041234567")')
    await wait_log(d, "rsrp_dbm: Some(-98.0)")
    # A slow modem does not hold up the protocol.
    r = await server.read("/3/0/0")
    assert r.code == "2.05"
    for command in ("ATE0", "AT+CMEE=1", "AT+CGMI", "AT+CEREG?", 'AT+QENG="servingcell"'):
        assert command in modem.commands, modem.commands
