"""Device actions reaching the real D-Bus services: a private dbus-daemon standing in
for the system bus, with python-dbusmock's logind and timedated templates on it."""

import asyncio
import subprocess
import time

import pytest

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


class PrivateBus:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        conf = tmp_path / "bus.conf"
        conf.write_text(BUS_CONF.format(socket=tmp_path / "bus.sock"))
        self.daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        self.address = self.daemon.stdout.readline().decode().strip()
        assert self.address.startswith("unix:"), f"dbus-daemon printed no address: {self.address!r}"
        self.mocks = []

    def start_mock(self, template: str, name: str) -> "Mock":
        log = self.tmp / f"{template}.calls"
        proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "dbusmock", "--system", "--template", template, "--logfile", str(log)],
            env={"DBUS_SYSTEM_BUS_ADDRESS": self.address, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.mocks.append(proc)
        deadline = time.monotonic() + 15
        while subprocess.run(
            ["dbus-send", f"--bus={self.address}", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.GetNameOwner", f"string:{name}"],
            capture_output=True,
        ).returncode != 0:
            assert proc.poll() is None, f"dbusmock {template} exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"dbusmock {template} never owned {name}"
            time.sleep(0.05)
        return Mock(log)

    def close(self):
        for p in self.mocks + [self.daemon]:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


class Mock:
    def __init__(self, log):
        self.log = log

    async def wait_call(self, method: str, timeout: float = 10.0) -> str:
        """The first logged call of ``method`` ("<time> Reboot False")."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text() if self.log.exists() else ""
            for line in text.splitlines():
                parts = line.split(" ", 2)
                if len(parts) >= 2 and parts[1] == method:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no {method} call within {timeout} s; calls: {text!r}")
            await asyncio.sleep(0.05)


@pytest.fixture
def bus(tmp_path):
    b = PrivateBus(tmp_path)
    yield b
    b.close()


async def test_reboot_through_logind(server, start_daemon, bus):
    logind = bus.start_mock("logind", "org.freedesktop.login1")
    start_daemon({"device": {"reboot": "logind"}}, env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    await server.wait_registered(timeout=15)
    resp = await server.execute("/3/0/4")
    assert resp.code == "2.04"
    call = await logind.wait_call("Reboot")
    assert call.split(" ", 2)[2] == "False", call  # interactive = false


async def test_timezone_and_clock_through_timedated(server, start_daemon, bus):
    timedated = bus.start_mock("timedated", "org.freedesktop.timedate1")
    start_daemon(env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    await server.wait_registered(timeout=15)
    resp = await server.write("/3/0/15", b"Europe/Paris", 0)
    assert resp.code == "2.04"
    call = await timedated.wait_call("SetTimezone")
    assert "Europe/Paris" in call, call
    resp = await server.read("/3/0/15")
    assert (resp.code, resp.payload) == ("2.05", b"Europe/Paris")
    resp = await server.write("/3/0/13", b"1800000000", 0)
    assert resp.code == "2.04"
    call = await timedated.wait_call("SetTime")
    assert "1800000000000000" in call, call  # microseconds
