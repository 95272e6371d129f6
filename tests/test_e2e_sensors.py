"""Simulated I2C sensors (model "sim") shown as IPSO objects, end to end."""

import asyncio
import re
import time

from bench import senml
from bench.daemon import expect_event
from bench.server import SENML_JSON, TEXT

# The sim model's waveform: 21 ± 4 °C, one step per sample.
SIM = {"model": "sim", "bus": "sim", "address": 1, "instance": 0, "application_type": "lab"}


def sensors(interval=1, **extra):
    return {"sensor": [dict(SIM, interval=interval, **extra)]}


async def start(server, start_daemon, **kw):
    daemon = start_daemon(sensors(**kw))
    ev = await expect_event(server, daemon, "register", timeout=15)
    return daemon, server.registrations[ev.location]


async def read_values(server, path, want=None, timeout=20.0):
    """The SenML JSON values under path, once `want(values)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        r = await server.read(path, accept=SENML_JSON)
        if r.code == "2.05":
            values = senml.decode_json(r.payload)
            if want is None or want(values):
                return values
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: {r.code} {r.payload!r} never matched")
        await asyncio.sleep(0.2)


async def test_sensor_objects_are_registered_and_read_with_units(server, start_daemon):
    _daemon, reg = await start(server, start_daemon)
    for obj in (3303, 3304, 3315, 3301, 3313, 3316, 3317, 3328, 3325):
        assert f"</{obj}/0>".encode() in reg.payload, reg.payload
    values = await read_values(server, "/3303/0", lambda v: "/3303/0/5700" in v)
    assert values["/3303/0/5701"] == "Cel"
    assert (values["/3303/0/5603"], values["/3303/0/5604"]) == (-40.0, 125.0)
    assert 17.0 <= values["/3303/0/5700"] <= 25.0
    assert values["/3303/0/5750"] == "lab"
    assert values["/3303/0/5518"] > 1_600_000_000
    r = await server.read("/3303/0/5700")
    assert r.code == "2.05" and r.content_format == TEXT
    assert 17.0 <= float(r.payload.decode()) <= 25.0
    units = {3304: "%RH", 3315: "Pa", 3301: "lx", 3313: "m/s2", 3316: "V", 3317: "A", 3328: "W", 3325: "ppm"}
    for obj, unit in units.items():
        r = await server.read(f"/{obj}/0/5701")
        assert (r.code, r.payload.decode()) == ("2.05", unit), obj
    accel = await read_values(server, "/3313/0", lambda v: "/3313/0/5704" in v)
    assert 9.0 < accel["/3313/0/5704"] < 10.5


async def test_observed_temperature_notifies_as_it_changes(server, start_daemon):
    await start(server, start_daemon)
    await read_values(server, "/3303/0", lambda v: "/3303/0/5700" in v)
    first, obs = await server.observe("/3303/0/5700")
    assert first.code == "2.05" and obs is not None
    seen = [float(first.payload.decode())]
    for _ in range(3):
        n = await obs.next(timeout=20)
        assert n.code == "2.05"
        seen.append(float(n.payload.decode()))
    # Every notification carries a new value.
    assert all(a != b for a, b in zip(seen, seen[1:])), seen
    obs.cancel()


async def test_reset_min_max_restarts_from_the_current_value(server, start_daemon):
    await start(server, start_daemon, interval=2)
    before = await read_values(
        server, "/3303/0", lambda v: v.get("/3303/0/5601", 0) < v.get("/3303/0/5602", 0), timeout=30
    )
    assert before["/3303/0/5601"] <= before["/3303/0/5700"] <= before["/3303/0/5602"]
    # A sample may land between the Execute and the Read; then min and max have moved
    # on, and the reset is tried again.
    for _ in range(5):
        assert (await server.execute("/3303/0/5605")).code == "2.04"
        v = await read_values(server, "/3303/0")
        if v["/3303/0/5601"] == v["/3303/0/5602"] == v["/3303/0/5700"]:
            break
    else:
        raise AssertionError(f"min/max not reset: {v}")
    # A non-executable resource refuses Execute.
    assert (await server.execute("/3303/0/5700")).code == "4.05"


async def test_pmin_of_an_observer_speeds_up_sampling(server, start_daemon):
    # Configured once an hour: only an observer's pmin can bring a second sample soon.
    await start(server, start_daemon, interval=3600)
    await read_values(server, "/3303/0", lambda v: "/3303/0/5700" in v)
    assert (await server.write_attributes("/3303/0/5700", {"pmin": 1})).code == "2.04"
    first, obs = await server.observe("/3303/0/5700")
    assert obs is not None
    n = await obs.next(timeout=30)
    assert float(n.payload.decode()) != float(first.payload.decode())
    obs.cancel()


async def test_application_type_survives_a_restart(server, start_daemon):
    daemon, _ = await start(server, start_daemon)
    r = await server.read("/3303/0/5750")
    assert (r.code, r.payload) == ("2.05", b"lab")
    assert (await server.write("/3303/0/5750", b"greenhouse", TEXT)).code == "2.04"
    assert (await server.read("/3303/0/5750")).payload == b"greenhouse"
    # Another object's instance keeps its own.
    assert (await server.read("/3304/0/5750")).payload == b"lab"
    await daemon.stop()
    mark = server.mark()
    daemon = start_daemon(sensors(), name="again")
    await expect_event(server, daemon, "register", after=mark, timeout=15)
    r = await server.read("/3303/0/5750")
    assert (r.code, r.payload) == ("2.05", b"greenhouse")


async def test_unknown_sensor_model_is_a_config_error_naming_the_line(server, start_daemon):
    daemon = start_daemon(sensors(model="bme281"), name="bad")
    assert await daemon.wait(timeout=15) == 78
    log = daemon.log()
    assert "bme281" in log and "bad.toml" in log
    assert re.search(r"bad\.toml:\d+:\d+: unknown variant", log), log
    assert server.events == []


async def notification_with_new_value(obs, seen, timeout=30):
    while True:
        n = await obs.next(timeout=timeout)
        assert n.code == "2.05", n
        v = float(n.payload.decode())
        if v not in seen:
            seen.add(v)
            return v


async def test_a_chip_unplugged_and_plugged_back_while_running(server, start_daemon, tmp_path):
    # A simulated bus whose chips are unplugged while a file names them: the real SHT3x
    # and TMP117 drivers against register-level simulations of the chips.
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    bus = f"sim:{sockets}"
    chips = [
        {"model": "sht3x", "bus": bus, "address": 0x44, "interval": 1, "instance": 0},
        {"model": "tmp117", "bus": bus, "address": 0x48, "interval": 1, "instance": 1},
    ]
    daemon = start_daemon({"sensor": chips})
    await expect_event(server, daemon, "register", timeout=15)
    values = await read_values(server, "/3303/0", lambda v: "/3303/0/5700" in v)
    assert (values["/3303/0/5603"], values["/3303/0/5604"]) == (-40.0, 125.0)
    assert values["/3303/0/6042"] == 4
    t117 = await read_values(server, "/3303/1", lambda v: "/3303/1/5700" in v)
    assert (t117["/3303/1/5603"], t117["/3303/1/5604"]) == (-55.0, 150.0)
    assert 17.0 <= t117["/3303/1/5700"] <= 25.0
    device = await read_values(server, "/3/0/11")
    assert device["/3/0/11/0"] == 0
    first, sht = await server.observe("/3303/0/5700")
    assert first.code == "2.05" and sht is not None
    _, tmp = await server.observe("/3303/1/5700")
    assert tmp is not None

    (sockets / "unplug-0x44").touch()
    # The observer of the vanished sensor hears an error, which ends the observation.
    while True:
        n = await sht.next(timeout=30)
        if n.code != "2.05":
            break
    assert n.code == "4.04", n
    assert (await server.read("/3303/0/5700")).code == "4.04"
    quality = await read_values(server, "/3303/0/6042")
    assert quality["/3303/0/6042"] == 1
    device = await read_values(server, "/3/0/11")
    assert device["/3/0/11/0"] == 8
    # The humidity of the same chip fails with it.
    assert (await server.read("/3304/0/5700")).code == "4.04"
    # The other chip on the bus goes on: three new values, each a pass of the sampler
    # over the bus that retried the missing chip too, which is logged once.
    seen = set()
    for _ in range(3):
        await notification_with_new_value(tmp, seen)
    lines = [line for line in daemon.log().splitlines() if "0x44" in line]
    assert len(lines) == 1, lines
    assert "WARN" in lines[0] and bus in lines[0], lines
    assert "sht3x" in lines[0] and "did not acknowledge its address" in lines[0], lines

    (sockets / "unplug-0x44").unlink()
    values = await read_values(
        server, "/3303/0", lambda v: "/3303/0/5700" in v and v.get("/3303/0/6042") == 4, timeout=30
    )
    assert 17.0 <= values["/3303/0/5700"] <= 25.0
    device = await read_values(server, "/3/0/11", lambda v: v["/3/0/11/0"] == 0, timeout=30)
    assert (await server.read("/3304/0/5700")).code == "2.05"
    # Observed again, it notifies as before.
    first, sht = await server.observe("/3303/0/5700")
    assert first.code == "2.05" and sht is not None
    await notification_with_new_value(sht, {float(first.payload.decode())})
    assert "answers again" in daemon.log()


async def test_adc_inputs_are_voltage_instances(server, start_daemon):
    # An ADS1115 on a simulated bus: its four inputs are /3316/4 to /3316/7.
    chip = {"model": "ads1115", "bus": "sim", "address": 0x48, "interval": 1, "instance": 4}
    daemon = start_daemon({"sensor": [chip]})
    ev = await expect_event(server, daemon, "register", timeout=15)
    payload = server.registrations[ev.location].payload
    for n in range(4):
        assert f"</3316/{4 + n}>".encode() in payload, payload
    for n in range(4):
        path = f"/3316/{4 + n}"
        v = await read_values(server, path, lambda v, p=path: f"{p}/5700" in v)
        assert v[f"{path}/5701"] == "V"
        assert (v[f"{path}/5603"], v[f"{path}/5604"]) == (-4.096, 4.096)
        # The simulated input n follows 1 + 0.5 n ± 0.25 V.
        assert abs(v[f"{path}/5700"] - (1.0 + 0.5 * n)) <= 0.2501, v
