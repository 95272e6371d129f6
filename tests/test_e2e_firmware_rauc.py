"""Firmware Update through the real `rauc service` (Debian's rauc 1.8) on a private bus:
file-backed ext4 slots, a custom bootloader handler, plain bundles signed by a CA made
for the test (backends/tests/rauc-rig.sh). A reboot is a restart of the service with the
other --override-boot-slot and a restart of the daemon."""

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest

from bench.daemon import NotifySocket, expect_event, expect_registration
from test_e2e_firmware import push, value, wait_for, wait_value
from bench.bus import PrivateBus

RIG = Path(__file__).resolve().parent.parent / "backends" / "tests" / "rauc-rig.sh"


class RaucRig:
    def __init__(self, tmp_path, bus):
        self.dir = tmp_path / "rauc"
        self.dir.mkdir()
        subprocess.run(["sh", str(RIG), str(self.dir)], check=True, capture_output=True)
        self.bus = bus
        self.service = None

    def boot(self, slot):
        self.stop()
        log = open(self.dir / "rauc.log", "a")
        self.service = subprocess.Popen(
            ["rauc", "service", f"--conf={self.dir / 'system.conf'}", f"--override-boot-slot={slot}"],
            env={"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )
        self.bus.wait_name("de.pengutronix.rauc", self.service, timeout=30)

    def stop(self):
        if self.service is not None:
            self.service.terminate()
            self.service.wait(10)
            self.service = None

    def boot_file(self, name):
        p = self.dir / "boot" / name
        return p.read_text().strip() if p.exists() else ""


@pytest.fixture
def rauc(tmp_path):
    bus = PrivateBus(tmp_path)
    rig = RaucRig(tmp_path, bus)
    rig.boot("A")
    yield rig
    rig.stop()
    bus.close()


def phase(tmp_path):
    p = tmp_path / "state" / "firmware.json"
    try:
        return json.loads(p.read_text())["phase"]
    except (OSError, ValueError):
        return None


async def keep_draining(notify):
    while True:
        notify._drain()
        await asyncio.sleep(0.01)


async def start(server, start_daemon, rauc, mark=None, env=None, **fw):
    changes = {"firmware": {"backend": "rauc", "commit_window": 60, **fw}}
    d = start_daemon(changes, env={"DBUS_SYSTEM_BUS_ADDRESS": rauc.bus.address, **(env or {})})
    await expect_registration(server, d, after=mark or 0, timeout=30)
    return d


async def install_bundle(tmp_path, server, rauc):
    assert (await push(server, (rauc.dir / "good.raucb").read_bytes())).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert await value(server, "/5/0/6") == "lwm2md-test"
    assert await value(server, "/5/0/7") == "2.0"
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_for(lambda: phase(tmp_path) == "installed", "RAUC's installation")
    assert rauc.boot_file("primary") == "B"


async def test_rauc_full_cycle_commit_after_registration(tmp_path, server, start_daemon, rauc):
    notify = NotifySocket(tmp_path / "notify.sock")
    # Read as they come, as systemd does: a full socket queue would hold the daemon up.
    drain = asyncio.create_task(keep_draining(notify))
    d = await start(server, start_daemon, rauc, env={"NOTIFY_SOCKET": str(notify.path)})
    # A bundle for another device is refused before anything is installed.
    assert (await push(server, (rauc.dir / "wrong-compatible.raucb").read_bytes())).code == "2.04"
    await wait_value(server, "/5/0/5", "6")
    assert await value(server, "/5/0/3") == "0"
    await install_bundle(tmp_path, server, rauc)
    # RAUC's Progress was followed while it installed: in the status and the log.
    await notify.wait_for(lambda line: line.startswith("STATUS=installing firmware: 100%"), d)
    steps = {line for line in notify.messages if line.startswith("STATUS=installing firmware:")}
    assert len(steps) >= 3, steps
    drain.cancel()
    notify.close()
    assert "firmware installation: 100%" in (tmp_path / "lwm2md.log").read_text()
    d.signal(signal.SIGKILL)
    await d.wait()
    rauc.boot("B")
    d = await start(server, start_daemon, rauc, mark=server.mark())
    await wait_value(server, "/5/0/5", "1")
    assert await value(server, "/5/0/3") == "0"
    assert rauc.boot_file("state-B") == "good"
    await wait_value(server, "/3/0/3", "2.0")
    assert phase(tmp_path) is None


async def test_rauc_rollback_when_the_new_system_cannot_register(tmp_path, server, start_daemon, rauc):
    d = await start(server, start_daemon, rauc)
    await install_bundle(tmp_path, server, rauc)
    d.signal(signal.SIGKILL)
    await d.wait()
    rauc.boot("B")
    lost = start_daemon(
        {"firmware": {"backend": "rauc", "commit_window": 2}, "server": [{"uri": "coap://127.0.0.1:9"}]},
        env={"DBUS_SYSTEM_BUS_ADDRESS": rauc.bus.address},
        name="lost",
    )
    await wait_for(lambda: phase(tmp_path) == "rolled_back", "the rollback", timeout=60)
    assert rauc.boot_file("primary") == "A"
    assert rauc.boot_file("state-B") == "bad"
    assert rauc.boot_file("state-A") == "good"
    lost.signal(signal.SIGKILL)
    await lost.wait()
    rauc.boot("A")
    await start(server, start_daemon, rauc, mark=server.mark())
    await wait_value(server, "/5/0/5", "8")
    assert await value(server, "/5/0/3") == "2"


async def test_rauc_failed_installation_reports_last_error_as_result_8(tmp_path, server, start_daemon, rauc):
    """RAUC's installation fails (its bootloader handler refuses the new boot order):
    its LastError is logged, the result is 8, the package stays for another try."""
    d = await start(server, start_daemon, rauc)
    (rauc.dir / "boot").mkdir(exist_ok=True)
    (rauc.dir / "boot" / "refuse").touch()
    assert (await push(server, (rauc.dir / "good.raucb").read_bytes())).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_value(server, "/5/0/5", "8")
    assert await value(server, "/5/0/3") == "2"
    assert phase(tmp_path) == "downloaded"
    log = (tmp_path / "lwm2md.log").read_text()
    assert "RAUC installation failed (1): Installation error: Failed marking slot rootfs.1 bootable" in log, log[-2000:]
    assert rauc.boot_file("primary") in ("", "A")
    assert rauc.boot_file("state-A") in ("", "good")
    # The handler takes it now: Update again goes through.
    (rauc.dir / "boot" / "refuse").unlink()
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_for(lambda: phase(tmp_path) == "installed", "RAUC's installation")
    assert rauc.boot_file("primary") == "B"


SLOT_BOOTNAME = {"rootfs.0": "A", "rootfs.1": "B"}


async def test_rauc_kill_9_at_random_points_never_installs_twice(tmp_path, server, start_daemon, rauc):
    """The daemon is killed at a random instant of push, check, RAUC's installation
    (slowed down so that it is often still running at the restart), after it, or before
    the commit. A kill is not a reboot: RAUC carries on; the new daemon follows what it
    does. Each time the state settles consistently, RAUC's primary slot is the running
    one unless an installation is complete, and no installation is ever started without
    an Update from the server."""
    import random

    rnd = random.Random(20261125)
    (rauc.dir / "boot").mkdir(exist_ok=True)
    (rauc.dir / "boot" / "slow").touch()
    bundle = (rauc.dir / "good.raucb").read_bytes()
    staged = tmp_path / "state" / "firmware" / "package"
    booted = "A"
    updates = commits = 0
    seen = set()

    def installed_target():
        try:
            record = json.loads((tmp_path / "state" / "firmware.json").read_text())
        except (OSError, ValueError):
            return None
        return record.get("target") if record["phase"] == "installed" else None

    def installs():
        return (rauc.dir / "rauc.log").read_text().count("/package: started")

    async def settle(d, round_):
        """Waits for Idle or Downloaded; a complete installation gets its reboot."""
        nonlocal booted, d_current
        loop = asyncio.get_running_loop()
        end = loop.time() + 90
        while True:
            st = await value(server, "/5/0/3")
            if st in ("0", "2"):
                return st
            record = phase(tmp_path)
            target = installed_target()
            if st == "3" and target is not None and SLOT_BOOTNAME[target] != booted:
                assert rauc.boot_file("primary") == SLOT_BOOTNAME[target], round_
                # The reboot the daemon asked for.
                d.signal(signal.SIGKILL)
                await d.wait()
                booted = SLOT_BOOTNAME[target]
                rauc.boot(booted)
                if rnd.random() < 0.5:
                    # Killed again in the new system, around the commit.
                    early = start_daemon(
                        {"firmware": {"backend": "rauc", "commit_window": 60}},
                        env={"DBUS_SYSTEM_BUS_ADDRESS": rauc.bus.address},
                    )
                    await asyncio.sleep(rnd.uniform(0.0, 0.15))
                    early.signal(signal.SIGKILL)
                    await early.wait()
                    seen.add("new system: " + str(phase(tmp_path)))
                d = d_current = await start(server, start_daemon, rauc, mark=server.mark())
                continue
            assert loop.time() < end, f"state stuck at {st} ({record}) after restart {round_}"
            await asyncio.sleep(0.1)

    d_current = None
    for round_ in range(12):
        d = await start(server, start_daemon, rauc, mark=server.mark())

        async def drive():
            nonlocal updates
            st = await value(server, "/5/0/3")
            if st == "0":
                await push(server, bundle)
                await wait_value(server, "/5/0/3", "2")
                st = "2"
            if st == "2":
                updates += 1
                await server.execute("/5/0/2")

        booted_before = booted
        task = asyncio.create_task(drive())
        await asyncio.sleep(rnd.uniform(0.0, 2.5))
        d.signal(signal.SIGKILL)
        await d.wait()
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        killed_in = phase(tmp_path)
        seen.add(killed_in)
        if installed_target() is not None:
            # Killed after the installation: the reboot it asked for comes.
            booted = SLOT_BOOTNAME[installed_target()]
            rauc.boot(booted)
            if rnd.random() < 0.5:
                # Killed again in the new system, around the commit.
                early = start_daemon(
                    {"firmware": {"backend": "rauc", "commit_window": 60}},
                    env={"DBUS_SYSTEM_BUS_ADDRESS": rauc.bus.address},
                )
                await asyncio.sleep(rnd.uniform(0.0, 0.15))
                early.signal(signal.SIGKILL)
                await early.wait()
                seen.add("new system: " + str(phase(tmp_path)))
        d = d_current = await start(server, start_daemon, rauc, mark=server.mark())
        st = await settle(d, round_)
        d = d_current
        result = await value(server, "/5/0/5")
        print(f"round {round_}: killed in {killed_in}, now {st}/{result} in {booted}, {installs()} installs")
        if result == "1":
            commits += 1
        # An update that went through says so, even when killed right after its commit.
        if killed_in in ("installing", "installed") and booted != booted_before:
            assert (st, result) == ("0", "1"), round_
        if st == "2":
            assert staged.exists() and phase(tmp_path) == "downloaded", round_
        else:
            assert not staged.exists() and phase(tmp_path) is None, round_
        # The running slot boots next and is good; nothing was installed on its own.
        assert rauc.boot_file("primary") in (booted, "" if booted == "A" else booted), round_
        assert rauc.boot_file(f"state-{booted}") in ("good", ""), round_
        assert installs() <= updates, (round_, installs(), updates)
        d.signal(signal.SIGKILL)
        await d.wait()
    print(sorted(seen))
    assert commits >= 1
    assert {"installing", "installed"} <= seen, seen
