"""Objects 4, 7, 10 and 11 through ModemManager: a private dbus-daemon with
python-dbusmock's modemmanager template (PyPI) extended by tests/bench/mm_template.py."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import senml
from bench.bus import PrivateBus
from bench.daemon import expect_event, expect_registration
from bench.server import SENML_JSON, TEXT

TEMPLATE = Path(__file__).parent / "bench" / "mm_template.py"
class ModemBus(PrivateBus):
    """A private bus with the ModemManager mock on it."""

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.log = open(tmp_path / "mm-mock.log", "wb")
        self.start_mock()

    def start_mock(self):
        # The venv's interpreter: python-dbusmock 0.38.1 from tests/requirements.txt.
        self.mock = subprocess.Popen(
            [sys.executable, "-m", "dbusmock", "--system", "-t", str(TEMPLATE)],
            env={"DBUS_SYSTEM_BUS_ADDRESS": self.address, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        self.wait_name("org.freedesktop.ModemManager1", self.mock)

    def stop_mock(self):
        self.mock.terminate()
        self.mock.wait(10)

    def send(self, path, method, *args, dest="org.freedesktop.ModemManager1"):
        return subprocess.run(
            ["dbus-send", f"--bus={self.address}", "--print-reply", f"--dest={dest}", path, method, *args],
            capture_output=True,
        )

    def mock_call(self, method: str):
        r = self.send("/org/freedesktop/ModemManager1", f"org.freedesktop.DBus.Mock.{method}")
        assert r.returncode == 0, r.stderr

    def close(self):
        self.mock.terminate()
        try:
            self.mock.wait(5)
        except subprocess.TimeoutExpired:
            self.mock.kill()
        super().close()
        self.log.close()


@pytest.fixture
def modem_bus(tmp_path):
    b = ModemBus(tmp_path)
    yield b
    b.close()


async def read_values(server, path):
    r = await server.read(path, accept=SENML_JSON)
    assert r.code == "2.05", (path, r)
    return senml.decode_json(r.payload)


async def wait_for(server, path, check, timeout=20.0):
    """Reads `path` until `check` holds; a 4.04 (the instance not made yet) is {}."""
    deadline = time.monotonic() + timeout
    while True:
        r = await server.read(path, accept=SENML_JSON)
        assert r.code in ("2.05", "4.04"), (path, r)
        values = senml.decode_json(r.payload) if r.code == "2.05" else {}
        if check(values):
            return values
        assert time.monotonic() < deadline, f"{path} never satisfied the check: {values}"
        await asyncio.sleep(0.2)


async def start(server, start_daemon, modem_bus):
    d = start_daemon(
        {"connectivity": {"backend": "modemmanager", "interval": 1}},
        env={"DBUS_SYSTEM_BUS_ADDRESS": modem_bus.address},
    )
    ev = await expect_event(server, d, "register", timeout=15)
    return d, ev


async def test_signal_operator_and_cell_of_the_modem(server, start_daemon, modem_bus):
    modem_bus.mock_call("AddConnectedModem")
    _, ev = await start(server, start_daemon, modem_bus)
    targets = {link.target for link in ev.links}
    assert {"/10/0", "/4/0", "/7/0"} <= targets, targets

    values = await wait_for(server, "/4/0", lambda v: "/4/0/2" in v)
    assert values["/4/0/0"] == 6  # LTE-FDD
    assert values["/4/0/2"] == -95  # RSRP, dBm
    assert values["/4/0/3"] == -11  # RSRQ
    assert values["/4/0/11"] == 7  # SNR, dB
    assert values["/4/0/10"] == 262 and values["/4/0/9"] == 1  # SMCC, SMNC
    assert values["/4/0/8"] == 0xC45A01  # cell ID
    assert values["/4/0/12"] == 0x4E21  # the TAC, LTE having no LAC
    assert [values["/4/0/4/0"], values["/4/0/4/1"]] == ["10.64.12.34", "2a01:598:a1:2::1"]
    assert values["/4/0/5/0"] == "10.64.12.33"
    assert values["/4/0/7/0"] == "internet.example"

    profile = await wait_for(server, "/11/0", lambda v: "/11/0/1" in v)
    assert profile["/11/0/1"] == "internet.example"
    assert profile["/11/0/3"] is True
    assert profile["/11/0/4"] == 3  # no authentication
    assert profile["/11/0/14"] == 3_000_000
    cellular = await read_values(server, "/10/0")
    assert cellular["/10/0/11/0"] in ("11:0", (11, 0)), cellular


async def test_apn_write_connects_and_reports_the_result(server, start_daemon, modem_bus):
    modem_bus.mock_call("AddConnectedModem")
    await start(server, start_daemon, modem_bus)
    await wait_for(server, "/11/0", lambda v: v.get("/11/0/3") is True)

    r = await server.write("/11/0/1", b"iot.example", TEXT)
    assert r.code == "2.04", r
    values = await wait_for(server, "/11/0", lambda v: v.get("/11/0/10/0") == 0 and v.get("/11/0/1") == "iot.example")
    assert values["/11/0/9/0"] > 1_700_000_000
    assert (await read_values(server, "/4/0"))["/4/0/7/0"] == "iot.example"

    # The network refuses this one: result 1, cause 33 (service option not subscribed),
    # and the APN in use is still the previous one.
    r = await server.write("/11/0/1", b"reject.example", TEXT)
    assert r.code == "2.04", r
    values = await wait_for(server, "/11/0", lambda v: v.get("/11/0/10/0") == 1)
    assert values["/11/0/11/0"] == 33
    values = await wait_for(server, "/11/0", lambda v: v.get("/11/0/1") == "iot.example")


async def test_a_modem_that_disappears_and_returns(server, start_daemon, modem_bus):
    modem_bus.mock_call("AddConnectedModem")
    await start(server, start_daemon, modem_bus)
    await wait_for(server, "/4/0", lambda v: v.get("/4/0/2") == -95)
    modem_bus.mock_call("RemoveModem")
    values = await wait_for(server, "/4/0", lambda v: "/4/0/2" not in v)
    assert "/4/0/0" not in values and "/4/0/4/0" not in values, values
    modem_bus.mock_call("AddConnectedModem")
    await wait_for(server, "/4/0", lambda v: v.get("/4/0/2") == -95)


async def test_modemmanager_restarts(server, start_daemon, modem_bus):
    modem_bus.mock_call("AddConnectedModem")
    d, _ = await start(server, start_daemon, modem_bus)
    await wait_for(server, "/4/0", lambda v: v.get("/4/0/2") == -95)
    modem_bus.stop_mock()
    await wait_for(server, "/4/0", lambda v: "/4/0/2" not in v and "/4/0/8" not in v)
    modem_bus.start_mock()
    modem_bus.mock_call("AddConnectedModem")
    await wait_for(server, "/4/0", lambda v: v.get("/4/0/2") == -95 and v.get("/4/0/8") == 0xC45A01)
    # Said once when it went, once when it came back, not at every look.
    log = d.log()
    assert log.count("ModemManager is not running") == 1, log


async def test_no_modemmanager_on_the_bus(server, start_daemon, tmp_path):
    # A bus without ModemManager: the daemon registers, object 4 has nothing to say.
    d, _ = await start(server, start_daemon, type("NoBus", (), {"address": f"unix:path={tmp_path}/none.sock"}))
    values = await read_values(server, "/4/0")
    assert not any(k.startswith("/4/0/") for k in values), values
    await asyncio.sleep(1)
    assert d.alive()


async def test_out_of_range_signal_figures_are_absent(server, start_daemon, modem_bus):
    import dbus

    modem_bus.mock_call("AddConnectedModem")
    await start(server, start_daemon, modem_bus)
    await wait_for(server, "/4/0", lambda v: v.get("/4/0/2") == -95)
    bus = dbus.bus.BusConnection(modem_bus.address)
    mock = bus.get_object("org.freedesktop.ModemManager1", "/org/freedesktop/ModemManager1")
    # A positive RSRP and a NaN RSRQ: no receiver measures those.
    mock.SetSignal(
        {"rsrp": dbus.Double(25.0), "rsrq": dbus.Double(float("nan")), "snr": dbus.Double(3.0)},
        dbus_interface="org.freedesktop.DBus.Mock",
    )
    values = await wait_for(server, "/4/0", lambda v: v.get("/4/0/11") == 3)
    assert "/4/0/2" not in values and "/4/0/3" not in values, values
    assert values["/4/0/0"] == 6
    bus.close()


async def test_statistics_of_a_configured_interface_with_the_modem(server, start_daemon, modem_bus, tmp_path):
    import json
    import socket

    modem_bus.mock_call("AddConnectedModem")
    d = start_daemon(
        {"connectivity": {"backend": "modemmanager", "interface": "lo", "interval": 1}},
        env={"DBUS_SYSTEM_BUS_ADDRESS": modem_bus.address},
    )
    await expect_event(server, d, "register", timeout=15)
    await wait_for(server, "/4/0", lambda v: v.get("/4/0/2") == -95)
    state = tmp_path / "state" / "connectivity-statistics.json"

    async def collecting(flag):
        deadline = time.monotonic() + 15
        while True:
            try:
                if json.loads(state.read_text()).get("collecting") is flag:
                    return
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, f"collecting never became {flag}"
            await asyncio.sleep(0.05)

    assert (await server.execute("/7/0/6")).code == "2.04"
    await collecting(True)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(100):
        tx.sendto(b"x" * 1024, ("127.0.0.1", 9))
    tx.close()
    assert (await server.execute("/7/0/7")).code == "2.04"
    await collecting(False)
    # lo's counters, not the mock bearer's (which never change).
    await wait_for(server, "/7/0", lambda v: v.get("/7/0/2", 0) >= 100 and v.get("/7/0/3", 0) >= 100)


async def test_signal_changes_are_notified(server, start_daemon, modem_bus):
    import dbus

    modem_bus.mock_call("AddConnectedModem")
    await start(server, start_daemon, modem_bus)
    await wait_for(server, "/4/0", lambda v: v.get("/4/0/2") == -95)
    first, obs = await server.observe("/4/0/2", accept=TEXT)
    assert first.code == "2.05" and first.payload == b"-95", first
    assert obs is not None
    bus = dbus.bus.BusConnection(modem_bus.address)
    mock = bus.get_object("org.freedesktop.ModemManager1", "/org/freedesktop/ModemManager1")
    mock.SetSignal(
        {"rsrp": dbus.Double(-101.0), "rsrq": dbus.Double(-13.0), "snr": dbus.Double(2.0)},
        dbus_interface="org.freedesktop.DBus.Mock",
    )
    n = await obs.next(timeout=20)
    assert (n.code, n.payload) == ("2.05", b"-101"), n
    obs.cancel()
    bus.close()


async def test_apn_profiles_survive_a_killed_daemon(server, start_daemon, modem_bus, tmp_path):
    import signal

    from bench import tlv
    from bench.server import TLV

    modem_bus.mock_call("AddConnectedModem")
    d, _ = await start(server, start_daemon, modem_bus)
    await wait_for(server, "/11/0", lambda v: v.get("/11/0/3") is True)
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
    await wait_for(server, "/11/1", lambda v: v.get("/11/1/10/0") == 0)
    await wait_for(server, "/11/0", lambda v: v.get("/11/0/3") is False)

    # No shutdown: what was written must already be on disk.
    d.signal(signal.SIGKILL)
    await d.wait()
    kept = (tmp_path / "state" / "apn-profiles.json").read_text()
    assert "s3cret" in kept  # the connection needs it again; the file is mode 0600
    assert oct((tmp_path / "state" / "apn-profiles.json").stat().st_mode & 0o777) == "0o600"

    mark = server.mark()
    d = start_daemon(
        {"connectivity": {"backend": "modemmanager", "interval": 1}},
        env={"DBUS_SYSTEM_BUS_ADDRESS": modem_bus.address},
    )
    await expect_registration(server, d, after=mark, timeout=30)
    values = await wait_for(server, "/11/1", lambda v: "/11/1/14" in v)
    assert values["/11/1/0"] == "iot"
    assert values["/11/1/1"] == "iot.example"
    assert values["/11/1/3"] is True
    assert values["/11/1/4"] == 1
    assert values["/11/1/5"] == "gw"
    assert "/11/1/6" not in values  # write-only
    # The modem's connection is the kept profile's, not a new one of its own.
    assert (await server.read("/11/0")).code == "4.04"
    cellular = await read_values(server, "/10/0")
    assert cellular["/10/0/11/0"] in ("11:1", (11, 1)), cellular


def nmea(body: str) -> str:
    checksum = 0
    for b in body.encode():
        checksum ^= b
    return f"${body}*{checksum:02X}"


def mock_set_gnss(modem_bus, sentences: str, raw: dict):
    import dbus

    bus = dbus.bus.BusConnection(modem_bus.address)
    mock = bus.get_object("org.freedesktop.ModemManager1", "/org/freedesktop/ModemManager1")
    mock.SetGnss(sentences, dbus.Dictionary(raw, signature="sv"), dbus_interface="org.freedesktop.DBus.Mock")
    bus.close()


def enabled_location_sources(modem_bus) -> int:
    r = modem_bus.send("/org/freedesktop/ModemManager1/Modems/8", "org.freedesktop.DBus.Properties.Get",
                       "string:org.freedesktop.ModemManager1.Modem.Location", "string:Enabled")
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1])


async def start_with_modem_location(server, start_daemon, modem_bus, location=None):
    d = start_daemon(
        {"connectivity": {"backend": "modemmanager", "interval": 1},
         "location": {"backend": "modem", **(location or {})}},
        env={"DBUS_SYSTEM_BUS_ADDRESS": modem_bus.address},
    )
    await expect_event(server, d, "register", timeout=15)
    return d


async def test_location_from_the_modems_gnss_nmea(server, start_daemon, modem_bus):
    import datetime

    modem_bus.mock_call("AddConnectedModem")
    sentences = "\r\n".join([
        nmea("GPGGA,101530.00,5231.2000,N,01324.3000,E,1,09,0.9,34.5,M,39.7,M,,"),
        nmea("GPRMC,101530.00,A,5231.2000,N,01324.3000,E,010.0,270.0,251126,,,A"),
        nmea("GPGST,101530.00,2.0,3.0,2.0,0.0,3.0,4.0,6.0"),
    ])
    mock_set_gnss(modem_bus, sentences, {})
    await start_with_modem_location(server, start_daemon, modem_bus)
    values = await wait_for(server, "/6/0", lambda v: "/6/0/0" in v)
    assert abs(values["/6/0/0"] - 52.52) < 1e-6, values
    assert abs(values["/6/0/1"] - 13.405) < 1e-6, values
    assert values["/6/0/2"] == 34.5
    assert values["/6/0/3"] == 5.0  # hypot of GST's 3 m and 4 m
    assert abs(values["/6/0/6"] - 10.0 * 1852 / 3600) < 1e-3, values
    when = datetime.datetime(2026, 11, 25, 10, 15, 30, tzinfo=datetime.timezone.utc).timestamp()
    assert values["/6/0/5"] == int(when)
    # The daemon switched the receiver on, keeping the 3GPP source.
    assert enabled_location_sources(modem_bus) == 0b111


async def test_location_from_the_modems_raw_gnss(server, start_daemon, modem_bus):
    import dbus

    modem_bus.mock_call("AddConnectedModem")
    raw = {"utc-time": dbus.String("203015"), "latitude": dbus.Double(38.889722),
           "longitude": dbus.Double(-77.008889), "altitude": dbus.Double(33.5)}
    mock_set_gnss(modem_bus, "", raw)
    await start_with_modem_location(server, start_daemon, modem_bus)
    values = await wait_for(server, "/6/0", lambda v: "/6/0/0" in v)
    assert (values["/6/0/0"], values["/6/0/1"], values["/6/0/2"]) == (38.889722, -77.008889, 33.5)
    assert "/6/0/3" not in values and "/6/0/6" not in values, values


async def test_a_modem_without_gnss_gives_no_location(server, start_daemon, modem_bus):
    modem_bus.mock_call("AddConnectedModem")
    d = await start_with_modem_location(server, start_daemon, modem_bus)
    deadline = time.monotonic() + 30
    while "the modem has no GNSS receiver" not in d.log():
        assert time.monotonic() < deadline, d.log()[-2000:]
        await asyncio.sleep(0.2)
    # Only the cell is known: no position is made up from it.
    r = await server.read("/6/0", accept=SENML_JSON)
    values = senml.decode_json(r.payload) if r.code == "2.05" else {}
    assert "/6/0/0" not in values and "/6/0/1" not in values, values
    assert enabled_location_sources(modem_bus) == 1


async def test_the_configured_position_stays_until_the_modem_has_a_fix(server, start_daemon, modem_bus):
    modem_bus.mock_call("AddConnectedModem")
    # A receiver without a fix yet.
    mock_set_gnss(modem_bus, nmea("GPGGA,101530.00,,,,,0,00,,,M,,M,,"), {})
    d = await start_with_modem_location(server, start_daemon, modem_bus,
                                        {"latitude": 48.1, "longitude": 11.5})
    values = await wait_for(server, "/6/0", lambda v: "/6/0/0" in v)
    assert (values["/6/0/0"], values["/6/0/1"]) == (48.1, 11.5)
    deadline = time.monotonic() + 30
    while "the modem's GNSS has no fix" not in d.log():
        assert time.monotonic() < deadline, d.log()[-2000:]
        await asyncio.sleep(0.2)
    mock_set_gnss(modem_bus, nmea("GPGGA,101530.00,5231.2000,N,01324.3000,E,1,09,0.9,34.5,M,39.7,M,,"), {})
    values = await wait_for(server, "/6/0", lambda v: abs(v.get("/6/0/0", 0) - 52.52) < 1e-6)
    assert (await read_values(server, "/6/0"))["/6/0/2"] == 34.5
