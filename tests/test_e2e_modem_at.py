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


async def test_at_modem_is_polled(server, start_daemon, modem):
    d = start_daemon(
        {"connectivity": {"backend": "at", "port": modem.path, "baud": 115200, "interval": 1}}
    )
    await expect_event(server, d, "register", timeout=15)
    await d.wait_log("modem identified", timeout=60)
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


async def read_object(server, path):
    r = await server.read(path, accept=SENML_JSON)
    return senml.decode_json(r.payload) if r.code == "2.05" else {}


async def wait_values(server, path, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        values = await read_object(server, path)
        if check(values):
            return values
        assert time.monotonic() < deadline, f"{path} never satisfied the check: {values}"
        await asyncio.sleep(0.3)


async def test_psm_and_edrx_of_the_at_modem(server, start_daemon, modem):
    from bench.server import OPAQUE, TEXT

    d = start_daemon(
        {"connectivity": {"backend": "at", "port": modem.path, "baud": 115200, "interval": 1}}
    )
    ev = await expect_event(server, d, "register", timeout=15)
    assert "/10/0" in {link.target for link in ev.links}
    values = await wait_values(server, "/10/0", lambda v: "/10/0/4" in v)
    assert values["/10/0/4"] == 3600  # "00000110": 6 × 10 min (extended T3412)
    assert values["/10/0/5"] == 30  # "00001111": 15 × 2 s (T3324)
    assert values["/10/0/8"] == bytes([0x35])  # WB-S1: PTW "0011", eDRX value "0101"
    assert "/10/0/9" not in values and "/10/0/7" not in values
    assert values["/10/0/12"] == 3 and values["/10/0/13"] == 3  # PSM and eDRX

    # A day: 24 × 1 h; the active time written before stays.
    r = await server.write("/10/0/4", b"86400", TEXT)
    assert r.code == "2.04", r
    await wait_values(server, "/10/0", lambda v: v.get("/10/0/4") == 86400)
    assert modem.psm == {"mode": 1, "tau": "00111000", "active": "00001111"}
    assert 'AT+CPSMS=1,,,"00111000","00001111"' in modem.commands
    # 100 s is no T3324 value: the next one up, 2 min, is asked for and shown.
    r = await server.write("/10/0/5", b"100", TEXT)
    assert r.code == "2.04", r
    await wait_values(server, "/10/0", lambda v: v.get("/10/0/5") == 120)
    # eDRX on NB-S1 with value "0010"; 27.007 cannot ask for a paging time window.
    r = await server.write("/10/0/9", bytes([0x72]), OPAQUE)
    assert r.code == "2.04", r
    await wait_values(server, "/10/0", lambda v: v.get("/10/0/9") == bytes([0x02]))
    assert 'AT+CEDRXS=1,5,"0010"' in modem.commands
    # Out of range for T3324: refused, nothing sent.
    sent = len(modem.commands)
    r = await server.write("/10/0/5", b"20000", TEXT)
    assert r.code == "4.00", r
    # PSM off, eDRX off.
    r = await server.write("/10/0/13", b"0", TEXT)
    assert r.code == "2.04", r
    values = await wait_values(server, "/10/0", lambda v: v.get("/10/0/13") == 0)
    assert "/10/0/8" not in values and "/10/0/9" not in values, values
    assert modem.psm["mode"] == 0 and modem.edrx == {}
    assert not any(c.startswith("AT+CPSMS=") and "20000" in c for c in modem.commands[sent:])


async def test_location_from_the_gnss_of_a_quectel_module(server, start_daemon):
    m = AtModem(answers={"AT+QGPS=1": ["OK"], "AT+QGPSLOC=2": ["+CME ERROR: 516"]})  # not fixed yet
    try:
        d = start_daemon({
            "connectivity": {"backend": "at", "port": m.path, "baud": 115200, "interval": 1},
            "location": {"backend": "modem", "latitude": 48.1, "longitude": 11.5},
        })
        await expect_event(server, d, "register", timeout=15)
        values = await wait_values(server, "/6/0", lambda v: "/6/0/0" in v)
        assert (values["/6/0/0"], values["/6/0/1"]) == (48.1, 11.5)
        deadline = time.monotonic() + 60
        while m.commands.count("AT+QGPSLOC=2") < 2:
            assert time.monotonic() < deadline, m.commands
            await asyncio.sleep(0.2)
        assert "AT+QGPS=1" in m.commands
        values = await read_object(server, "/6/0")
        assert (values["/6/0/0"], values["/6/0/1"]) == (48.1, 11.5), "no fix, nothing made up"

        m.answers["AT+QGPSLOC=2"] = [
            "+QGPSLOC: 101530.000,52.52000,13.40500,0.9,34.5,3,270.00,36.0,19.4,251126,09", "OK",
        ]
        values = await wait_values(server, "/6/0", lambda v: v.get("/6/0/0") == 52.52)
        assert values["/6/0/1"] == 13.405 and values["/6/0/2"] == 34.5
        assert abs(values["/6/0/6"] - 10.0) < 1e-9  # 36 km/h
        assert values["/6/0/5"] == 1795601730  # 2026-11-25 10:15:30 UTC
    finally:
        m.close()


async def test_apn_profile_reconfigures_the_at_modem(server, start_daemon):
    """A server's APN profile becomes AT+CGDCONT, AT+CGAUTH and a re-activation; object 11
    shows the outcome, and a refused profile leaves the modem on its previous APN."""
    from bench import tlv
    from bench.server import TEXT, TLV

    m = AtModem(urc_every=None)
    m.refuse_apn["reject.example"] = 133  # requested service option not subscribed
    try:
        d = start_daemon(
            {"connectivity": {"backend": "at", "port": m.path, "baud": 115200, "interval": 1}}
        )
        await expect_event(server, d, "register", timeout=15)
        await wait_values(server, "/4/0", lambda v: v.get("/4/0/7/0") == "internet.telekom")

        payload = tlv.object_instance(1, [
            tlv.resource(0, tlv.enc_str("iot")),
            tlv.resource(1, tlv.enc_str("iot.example")),
            tlv.resource(4, tlv.enc_int(1)),  # CHAP
            tlv.resource(5, tlv.enc_str("gw")),
            tlv.resource(6, tlv.enc_str("s3cret")),
            tlv.resource(3, tlv.enc_bool(True)),
        ])
        r = await server.create("/11", payload, TLV)
        assert r.code == "2.01", r
        values = await wait_values(server, "/11/1", lambda v: v.get("/11/1/10/0") == 0)
        assert values["/11/1/9/0"] > 1_700_000_000  # establishment time, UTC
        assert "/11/1/11/0" not in values  # no reject cause
        assert "/11/1/6" not in values  # the secret is write-only
        assert m.contexts[1] == ["IP", "iot.example"]  # the context's PDP type is kept
        assert m.auth[1] == [2, "gw", "s3cret"]
        assert 1 in m.active
        sent = m.commands
        define = sent.index('AT+CGDCONT=1,"IP","iot.example"')
        auth = sent.index('AT+CGAUTH=1,2,"gw","s3cret"', define)
        off = sent.index("AT+CGACT=0,1", auth)
        assert sent.index("AT+CGACT=1,1", off) > off
        await wait_values(server, "/4/0", lambda v: v.get("/4/0/7/0") == "iot.example")
        cellular = await read_object(server, "/10/0")
        assert cellular["/10/0/11/0"] in ("11:1", (11, 1)), cellular

        # An LTE module will not drop its last PDN connection: the daemon detaches and
        # attaches instead. The network refuses the APN, the cause shows, and the
        # previous APN is defined and activated again.
        m.keep_last_pdn = True
        mark = len(m.commands)
        r = await server.write("/11/1/1", b"reject.example", TEXT)
        assert r.code == "2.04", r
        values = await wait_values(server, "/11/1", lambda v: v.get("/11/1/10/0") == 1)
        assert values["/11/1/11/0"] == 33
        after = m.commands[mark:]
        assert 'AT+CGDCONT=1,"IP","reject.example"' in after, after
        assert "AT+CGATT=0" in after and "AT+CGATT=1" in after, after
        restore = after.index('AT+CGDCONT=1,"IP","iot.example"')
        assert 'AT+CGAUTH=1,2,"gw","s3cret"' in after[restore:], after
        assert m.contexts[1] == ["IP", "iot.example"] and 1 in m.active
        await wait_values(server, "/4/0", lambda v: v.get("/4/0/7/0") == "iot.example")
        assert "s3cret" not in d.log()
    finally:
        m.close()
