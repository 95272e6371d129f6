"""Device actions reaching the real D-Bus services: a private dbus-daemon standing in
for the system bus, with python-dbusmock's logind and timedated templates on it."""

import asyncio
import subprocess
import time

import pytest

from bench.bus import PrivateBus


class MockedBus(PrivateBus):
    """A private bus with python-dbusmock templates on it."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.tmp = tmp_path
        self.mocks = []

    def start_mock(self, template: str, name: str) -> "Mock":
        log = self.tmp / f"{template}.calls"
        proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "dbusmock", "--system", "--template", template, "--logfile", str(log)],
            env={"DBUS_SYSTEM_BUS_ADDRESS": self.address, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.mocks.append(proc)
        self.wait_name(name, proc, timeout=15)
        return Mock(log)

    def close(self):
        for p in self.mocks:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        super().close()


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
    b = MockedBus(tmp_path)
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
