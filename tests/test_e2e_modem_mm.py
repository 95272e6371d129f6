"""The real ModemManager (Debian's modemmanager) probing the AT-modem simulator on a
pseudo-terminal, and the daemon with [connectivity] backend = "modemmanager" showing
what ModemManager made of the simulated modem in object 4.

ModemManager runs with --test-no-udev on a private bus, in a private mount namespace
where the simulator's pty is bind-mounted over /dev/ttyS0 (a tty with a sysfs entry, as
ModemManager requires) and a copy of its udev rules, plus one marking ttyS0 as an AT
modem port, over /lib/udev/rules.d. polkit is python-dbusmock's polkitd allowing all.
Needs root (mount namespaces)."""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import senml
from bench.at_modem import MODEMMANAGER_ANSWERS, AtModem
from bench.bus import PrivateBus
from bench.daemon import expect_event
from bench.server import SENML_JSON

TTY = "ttyS0"
RULE = f"""ACTION!="add|change|move|bind", GOTO="lwm2md_test_end"
KERNEL=="{TTY}", ENV{{ID_MM_DEVICE_PROCESS}}="1"
KERNEL=="{TTY}", ENV{{ID_MM_PORT_TYPE_AT_PRIMARY}}="1"
LABEL="lwm2md_test_end"
"""
# Generous: probing alone takes ModemManager about 10 s, more on a loaded machine.
WITHIN = 120.0


def wait_until(check, what: str, timeout: float = WITHIN, alive=()):
    deadline = time.monotonic() + timeout
    while not check():
        for name, proc in alive:
            assert proc.poll() is None, f"{name} exited ({proc.returncode})"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


class RealModemManager:
    def __init__(self, tmp_path: Path):
        for need in ("ModemManager", "mmcli", "unshare"):
            assert shutil.which(need), f"{need} is not installed (apt package modemmanager)"
        assert Path(f"/sys/class/tty/{TTY}").exists() and Path(f"/dev/{TTY}").exists(), (
            f"ModemManager needs a tty with a sysfs entry to stand for the modem: no /dev/{TTY}"
        )
        self.tmp = tmp_path
        self.bus = PrivateBus(tmp_path)
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.procs = []
        self.polkit = self._spawn(
            [sys.executable, "-m", "dbusmock", "--system", "-t", "polkitd"], "polkit.log"
        )
        self._wait_name("org.freedesktop.PolicyKit1", self.polkit)
        r = self.busctl("call", "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                        "org.freedesktop.DBus.Mock", "AllowUnknown", "b", "true")
        assert r.returncode == 0, r.stderr

        self.modem = AtModem(answers=MODEMMANAGER_ANSWERS, urc_every=None)
        rules = tmp_path / "rules.d"
        rules.mkdir()
        for f in Path("/lib/udev/rules.d").glob("*-mm-*.rules"):
            shutil.copy(f, rules)
        (rules / "77-mm-lwm2md-test.rules").write_text(RULE)
        script = (
            f"mount --bind {self.modem.path} /dev/{TTY} && "
            f"mount --bind {rules} /lib/udev/rules.d && "
            "exec ModemManager --test-no-udev --test-no-suspend-resume --debug --log-level=DEBUG"
        )
        self.mm = self._spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", script], "mm.log")
        self._wait_name("org.freedesktop.ModemManager1", self.mm)

    def _spawn(self, argv, log):
        out = open(self.tmp / log, "wb")
        p = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((p, out))
        return p

    def busctl(self, *args):
        return subprocess.run(["busctl", f"--address={self.bus.address}", *args], capture_output=True, text=True)

    def mmcli(self, *args):
        return subprocess.run(["mmcli", *args], env=self.env, capture_output=True, text=True, timeout=60)

    def _wait_name(self, name, proc):
        wait_until(
            lambda: self.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                "GetNameOwner", "s", name).returncode == 0,
            f"{name} on the bus", alive=[(name, proc)],
        )

    def log(self) -> str:
        return (self.tmp / "mm.log").read_text(errors="replace")

    def close(self):
        for p, out in reversed(self.procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            out.close()
        self.modem.close()
        self.bus.close()


@pytest.fixture
def real_mm(tmp_path):
    mm = RealModemManager(tmp_path)
    yield mm
    mm.close()
    print("--- ModemManager, last 60 lines ---")
    print("\n".join(mm.log().splitlines()[-60:]))


async def test_real_modemmanager_with_the_simulated_modem(server, real_mm, start_daemon):
    alive = [("ModemManager", real_mm.mm)]
    # What udev would say when the port appears.
    r = real_mm.mmcli(f"--report-kernel-event=action=add,subsystem=tty,name={TTY}")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: "/org/freedesktop/ModemManager1/Modem/" in real_mm.mmcli("-L").stdout,
               "ModemManager made a modem of the port", alive=alive)
    # ModemManager leaves a modem disabled until a connection manager enables it.
    wait_until(lambda: real_mm.mmcli("-m", "any", "--enable").returncode == 0,
               "the modem enabled", alive=alive)

    d = start_daemon(
        {"connectivity": {"backend": "modemmanager", "interval": 1}},
        env={"DBUS_SYSTEM_BUS_ADDRESS": real_mm.bus.address},
    )
    await expect_event(server, d, "register", timeout=30)
    deadline = time.monotonic() + WITHIN
    while True:
        resp = await server.read("/4/0", accept=SENML_JSON)
        values = senml.decode_json(resp.payload) if resp.code == "2.05" else {}
        if "/4/0/2" in values and "/4/0/8" in values and "/4/0/0" in values:
            break
        assert real_mm.mm.poll() is None, "ModemManager exited"
        assert time.monotonic() < deadline, f"object 4 never filled: {values}"
        await asyncio.sleep(0.5)
    # The simulator's answers, through ModemManager's parsing and the daemon's mapping.
    assert values["/4/0/0"] == 6  # LTE-FDD: +CEREG AcT 7
    assert values["/4/0/2"] == -91  # RSRP from +CESQ index 50, through Modem.Signal
    assert values["/4/0/3"] == -10  # RSRQ from +CESQ index 20
    assert values["/4/0/10"] == 262 and values["/4/0/9"] == 1  # +COPS "26201"
    assert values["/4/0/8"] == 0x08F381C5  # cell ID of +CEREG, via Location 3GPP
    assert values["/4/0/12"] == 0x3193  # the TAC
    assert "AT+CESQ" in real_mm.modem.commands
