"""Objects defined by OMA XML files, with resources bound to files, commands and constants."""

import asyncio
import re
import time

from bench import linkformat
from bench.daemon import expect_event

TEXT = 0

ITEM = """
      <Item ID="{id}"><Name>{name}</Name><Operations>{ops}</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>{type}</Type><RangeEnumeration></RangeEnumeration><Units>{units}</Units>
        <Description></Description></Item>"""


def definition(object_id=33000, version="1.2", items=None):
    items = items or [
        (1, "Temperature", "R", "Float", "Cel"),
        (2, "Mode", "RW", "String", ""),
        (3, "Restart", "E", "", ""),
        (4, "Self Test", "E", "", ""),
        (5, "Label", "RW", "String", ""),
        (6, "Site", "R", "String", ""),
        (7, "Calibrate", "E", "", ""),
        (8, "Setpoint", "RW", "Float", "Cel"),
    ]
    body = "".join(ITEM.format(id=i, name=n, ops=o, type=t, units=u) for i, n, o, t, u in items)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://openmobilealliance.org/tech/profiles/LWM2M-v1_1.xsd">
  <Object ObjectType="MODefinition">
    <Name>Test Gadget</Name><Description1></Description1>
    <ObjectID>{object_id}</ObjectID><ObjectURN>urn:oma:lwm2m:x:{object_id}</ObjectURN>
    <LWM2MVersion>1.1</LWM2MVersion><ObjectVersion>{version}</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
    <Resources>{body}
    </Resources>
  </Object>
</LWM2M>
"""


async def until(check, what, timeout=20.0):
    """Polls `check` (an async callable returning a truthy value) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.2)


def gadget_config(tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "gadget.xml").write_text(definition())
    temp = tmp_path / "temp"
    temp.write_text("21500\n")
    mode = tmp_path / "mode"
    mode.write_text("eco\n")
    executed = tmp_path / "executed"
    setpoint = tmp_path / "setpoint"
    setpoint.write_text("20000\n")
    resources = [
        {"path": "/33000/0/8", "file": str(setpoint), "scale": 0.001},
        {"path": "/33000/0/1", "file": str(temp), "scale": 0.001, "interval": 1},
        {
            # Prints the mode; with an argument (a Write) stores it first.
            "path": "/33000/0/2",
            "command": [f'if [ -n "$1" ]; then printf "%s\\n" "$1" > {mode}; fi; cat {mode}'],
            "shell": True,
            "interval": 1,
            "timeout": 10,
        },
        {"path": "/33000/0/3", "command": ["/bin/sh", "-c", f'echo "$0" > {executed}']},
        {"path": "/33000/0/4", "command": ["echo 'self test: sensor 2 missing' >&2; exit 3"], "shell": True},
        {"path": "/33000/0/6", "value": "lab bench 7"},
    ]
    return {"object_dirs": [str(objects)], "resource": resources}, temp, mode, executed, setpoint


async def test_custom_object_bound_to_a_file_and_commands(server, start_daemon, tmp_path):
    config, temp, mode, executed, setpoint = gadget_config(tmp_path)
    daemon = start_daemon(config)
    ev = await expect_event(server, daemon, "register", timeout=20)
    links = linkformat.by_target(ev.links)
    assert links["/33000"].get("ver") == "1.2", ev.payload
    assert "/33000/0" in links, ev.payload

    # A file in millidegrees, read as degrees.
    async def temperature():
        r = await server.read("/33000/0/1")
        return r if r.code == "2.05" else None

    r = await until(temperature, "first reading of the file")
    assert (r.content_format, r.payload) == (TEXT, b"21.5")
    r = await server.read("/33000/0/6")
    assert (r.code, r.payload) == ("2.05", b"lab bench 7")
    assert (await server.write("/33000/0/6", b"elsewhere", TEXT)).code == "4.05"

    # A Write goes to the command as its argument; the value follows.
    assert (await server.write("/33000/0/2", b"turbo", TEXT)).code == "2.04"
    assert mode.read_text() == "turbo\n"
    r = await server.read("/33000/0/2")
    assert (r.code, r.payload) == ("2.05", b"turbo")

    # A Write to a file-bound resource lands in the file, scaled back.
    assert (await server.write("/33000/0/8", b"22.5", TEXT)).code == "2.04"
    assert setpoint.read_text() == "22500"
    r = await server.read("/33000/0/8")
    assert (r.code, r.payload) == ("2.05", b"22.5")
    # A file that cannot be written (a directory now, whoever runs the test): 5.00, and
    # the log says why.
    setpoint.unlink()
    setpoint.mkdir()
    assert (await server.write("/33000/0/8", b"30", TEXT)).code == "5.00"
    assert f"writing {setpoint}: Is a directory" in daemon.log()
    setpoint.rmdir()

    # Execute passes its arguments.
    assert (await server.execute("/33000/0/3", "1='now'")).code == "2.04"
    assert executed.read_text().strip() == "1='now'"
    # A failing command: 5.00 and its stderr in the log.
    assert (await server.execute("/33000/0/4")).code == "5.00"
    assert "self test: sensor 2 missing" in daemon.log()
    # Nothing bound: nothing would happen, and the server is told so.
    assert (await server.execute("/33000/0/7")).code == "4.05"

    # An unbound resource is plain storage the server writes.
    assert (await server.write("/33000/0/5", b"north cabinet", TEXT)).code == "2.04"
    assert (await server.read("/33000/0/5")).payload == b"north cabinet"

    # Observing the file-bound value: the file changes, a notification follows.
    first, obs = await server.observe("/33000/0/1")
    assert first.code == "2.05" and first.payload == b"21.5"
    assert obs is not None, "the client did not accept the observation"
    temp.write_text("23250\n")
    n = await obs.next(timeout=20)
    assert (n.code, n.content_format, n.payload) == ("2.05", TEXT, b"23.25")
    obs.cancel()

    # A file that disappears: the last value stays, a log line says why, and the
    # reading comes back when the file does.
    temp.unlink()
    await until(
        lambda: asyncio.sleep(0, result="temp" in daemon.log() and "No such file" in daemon.log()),
        "a log line about the missing file",
    )
    assert (await server.read("/33000/0/1")).payload == b"23.25"
    temp.write_text("19000")

    async def recovered():
        return float((await server.read("/33000/0/1")).payload) == 19.0

    await until(recovered, "the reading after the file came back")
    assert daemon.alive()


async def test_server_created_instances_survive_a_restart(server, start_daemon, tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "gadget.xml").write_text(definition(version="1.0"))
    daemon = start_daemon({"object_dirs": [str(objects)]})
    ev = await expect_event(server, daemon, "register", timeout=20)
    links = linkformat.by_target(ev.links)
    # Version 1.0 is not announced; an object without instances is listed bare.
    assert "/33000" in links and links["/33000"].get("ver") is None, ev.payload
    resp = await server.create("/33000", b"\xc8\x05\x04tent", 11542)  # TLV: resource 5 = "tent"
    assert resp.code == "2.01", resp
    assert (await server.read("/33000/0/5")).payload == b"tent"
    await daemon.stop()

    mark = server.mark()
    again = start_daemon({"object_dirs": [str(objects)]}, name="again")
    ev = await expect_event(server, again, "register", after=mark, timeout=20)
    assert "/33000/0" in linkformat.by_target(ev.links), ev.payload
    assert (await server.read("/33000/0/5")).payload == b"tent"


async def test_conflicting_definitions_exit_78_naming_both_files(server, start_daemon, tmp_path):
    first = tmp_path / "vendor"
    second = tmp_path / "local"
    first.mkdir()
    second.mkdir()
    (first / "gadget.xml").write_text(definition())
    (second / "my-gadget.xml").write_text(definition(version="2.0"))
    daemon = start_daemon({"object_dirs": [str(first), str(second)]}, name="conflict")
    assert await daemon.wait(timeout=15) == 78
    log = daemon.log()
    assert str(first / "gadget.xml") in log, log
    assert str(second / "my-gadget.xml") in log, log
    assert server.events == []

    # One that redefines a built-in object.
    (second / "my-gadget.xml").unlink()
    (second / "device.xml").write_text(definition(object_id=3))
    daemon = start_daemon({"object_dirs": [str(second)]}, name="builtin")
    assert await daemon.wait(timeout=15) == 78
    log = daemon.log()
    assert str(second / "device.xml") in log and "built-in object 3" in log, log

    # Malformed XML: the file and the line.
    (second / "device.xml").write_text(definition().replace("</Name>", "", 1))
    daemon = start_daemon({"object_dirs": [str(second)]}, name="malformed")
    assert await daemon.wait(timeout=15) == 78
    log = daemon.log()
    assert re.search(re.escape(str(second / "device.xml")) + r":\d+:\d+: malformed XML", log), log


async def test_binding_to_an_undefined_resource_exits_78_with_the_line(server, start_daemon, tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "gadget.xml").write_text(definition())
    daemon = start_daemon(
        {"object_dirs": [str(objects)], "resource": [{"path": "/33000/0/99", "value": 1}]}, name="undefined"
    )
    assert await daemon.wait(timeout=15) == 78
    log = daemon.log()
    assert re.search(r"undefined\.toml:\d+:\d+: resource /33000/0/99: .*no resource 99", log), log


async def test_misbehaving_commands_are_bounded_and_logged(server, start_daemon, tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "gadget.xml").write_text(definition())
    toggle = tmp_path / "healthy"
    config = {
        "object_dirs": [str(objects)],
        "resource": [
            # Hangs on Write.
            {"path": "/33000/0/2", "command": ['[ -n "$1" ] && sleep 60; echo idle'], "shell": True, "timeout": 1},
            # Prints garbage for a Float until the file exists, then a number.
            {
                "path": "/33000/0/1",
                "command": [f"if [ -e {toggle} ]; then echo 7.5; else echo 'temp=hot!'; fi"],
                "shell": True,
                "interval": 1,
            },
            # Floods stdout.
            {"path": "/33000/0/5", "command": ["yes"], "interval": 1},
        ],
    }
    daemon = start_daemon(config)
    await expect_event(server, daemon, "register", timeout=20)

    # Killed after its timeout, within the server's patience.
    assert (await server.write("/33000/0/2", b"turbo", TEXT)).code == "5.00"
    assert "still running after" in daemon.log()

    await until(lambda: asyncio.sleep(0, result="is not a Float value" in daemon.log()), "a log line about garbage")
    await until(lambda: asyncio.sleep(0, result="printed more than" in daemon.log()), "a log line about a flood")
    assert (await server.read("/33000/0/1")).code == "4.04"
    assert (await server.read("/33000/0/5")).code == "4.04"
    toggle.touch()

    async def recovered():
        r = await server.read("/33000/0/1")
        return r.code == "2.05" and r.payload == b"7.5"

    await until(recovered, "a good reading after garbage")
    # The hung binding answers reads again.
    r = await server.read("/33000/0/2")
    assert (r.code, r.payload) == ("2.05", b"idle")
    # Each failure is logged once, not every interval.
    assert daemon.log().count("printed more than") == 1
    assert daemon.log().count("is not a Float value") == 1


async def test_observers_speed_up_a_slow_command(server, start_daemon, tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "gadget.xml").write_text(definition())
    source = tmp_path / "mode"
    source.write_text("eco\n")
    # Read hourly unless observed; an observer with pmin 0 brings it to min_interval.
    resource = {"path": "/33000/0/6", "command": ["cat", str(source)], "interval": 3600, "min_interval": 1}
    daemon = start_daemon({"object_dirs": [str(objects)], "resource": [resource]})
    await expect_event(server, daemon, "register", timeout=20)

    async def first():
        r = await server.read("/33000/0/6")
        return r.code == "2.05" and r.payload == b"eco"

    await until(first, "the first reading")
    first_response, obs = await server.observe("/33000/0/6")
    assert first_response.payload == b"eco" and obs is not None
    source.write_text("boost\n")
    n = await obs.next(timeout=20)
    assert n.payload == b"boost"
    obs.cancel()
