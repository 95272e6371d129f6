"""Firmware Update (object 5) end to end: a package pushed block-wise by the bench
server's aiocoap client, installed by the script backend, committed after the
simulated reboot once the daemon has registered again, or rolled back."""

import asyncio
import contextlib
import hashlib
import json
import os
import signal

import pytest

from bench.daemon import expect_event, expect_registration
from bench.server import TEXT

OPAQUE = 42


def package(size: int, name: str = "rootfs", version: str = "2.0") -> bytes:
    """A test image: a one-line header the check script reads, then pseudo-random data."""
    header = f"IMG name={name} version={version}\n".encode()
    body = bytearray()
    seed = hashlib.sha256(header).digest()
    while len(header) + len(body) < size:
        seed = hashlib.sha256(seed).digest()
        body += seed
    return header + bytes(body[: size - len(header)])


def script_firmware(tmp_path, **extra):
    """[firmware] for the script backend; the "slot" is a file, reboots are simulated."""
    slot = tmp_path / "slot.img"
    version = tmp_path / "version"
    version.write_text("1.0\n")
    check = (
        'read -r magic name version < "$1"; '
        '[ "$magic" = IMG ] || exit 6; echo "$name"; echo "$version"'
    )
    install = (
        f'grep -q broken "$1" && exit 1; grep -q defer-me "$1" && exit 11; cp "$1" {slot}; '
        f'sed -n "1s/.*version=//p" "$1" > {tmp_path}/pending-version'
    )
    commit = f"mv {tmp_path}/pending-version {version}; touch {tmp_path}/committed"
    rollback = f"touch {tmp_path}/rolled-back"
    config = {
        "backend": "script",
        "check": ["/bin/sh", "-c", check, "check"],
        "install": ["/bin/sh", "-c", install, "install"],
        "commit": ["/bin/sh", "-c", commit],
        "rollback": ["/bin/sh", "-c", rollback],
        "version": ["/bin/cat", str(version)],
        "commit_window": 60,
    }
    config.update(extra)
    return config


async def value(server, path: str) -> str:
    r = await server.read(path, accept=TEXT)
    assert r.code == "2.05", (path, r)
    return r.payload.decode()


async def wait_value(server, path: str, want: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = await value(server, path)
        if got == want:
            return
        assert loop.time() < end, f"{path} stayed {got!r}, expected {want!r}"
        await asyncio.sleep(0.1)


async def wait_for(cond, what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def installed(tmp_path, image: bytes):
    """The install script has finished and the daemon has recorded it."""
    slot = tmp_path / "slot.img"
    progress = tmp_path / "state" / "firmware.json"

    def done():
        try:
            return json.loads(progress.read_text())["phase"] == "installed"
        except (OSError, ValueError):
            return False

    return lambda: done() and slot.read_bytes() == image


async def state(server) -> tuple[str, str]:
    return await value(server, "/5/0/3"), await value(server, "/5/0/5")


async def push(server, data: bytes):
    return await server.write("/5/0/0", data, OPAQUE)


async def restart(server, start_daemon, d, **kw):
    """A simulated reboot: the daemon stops hard and starts again."""
    d.signal(signal.SIGKILL)
    await d.wait()
    mark = server.mark()
    d2 = start_daemon(**kw)
    await expect_registration(server, d2, after=mark, timeout=30)
    return d2


async def test_firmware_push_update_and_commit_after_registration(tmp_path, server, start_daemon):
    d = start_daemon({"firmware": script_firmware(tmp_path)})
    await expect_event(server, d, "register", timeout=15)
    assert await state(server) == ("0", "0")
    assert await value(server, "/5/0/9") == "2"  # push and pull
    await wait_value(server, "/3/0/3", "1.0")
    image = package(3 * 1024 * 1024 + 77)
    r = await push(server, image)
    assert r.code == "2.04", r
    await wait_value(server, "/5/0/3", "2")
    assert await value(server, "/5/0/6") == "rootfs"
    assert await value(server, "/5/0/7") == "2.0"
    staged = tmp_path / "state" / "firmware" / "package"
    assert staged.read_bytes() == image
    r = await server.execute("/5/0/2")
    assert r.code == "2.04", r
    await wait_value(server, "/5/0/3", "3")
    await wait_for(installed(tmp_path, image), "the install script")
    assert not (tmp_path / "committed").exists()

    d = await restart(server, start_daemon, d, config_changes={"firmware": script_firmware(tmp_path)})
    await wait_value(server, "/5/0/5", "1")
    assert await value(server, "/5/0/3") == "0"
    assert (tmp_path / "committed").exists()
    assert not staged.exists()
    await wait_value(server, "/3/0/3", "2.0")


async def test_firmware_rolls_back_when_the_new_system_cannot_register(tmp_path, server, start_daemon):
    fw = script_firmware(tmp_path)
    d = start_daemon({"firmware": fw})
    await expect_event(server, d, "register", timeout=15)
    image = package(100_000)
    assert (await push(server, image)).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_value(server, "/5/0/3", "3")
    await wait_for(installed(tmp_path, image), "the install script")
    d.signal(signal.SIGKILL)
    await d.wait()
    # The new system comes up unable to reach the server: nothing answers on this port.
    lost = start_daemon(
        {"firmware": {**fw, "commit_window": 2}, "server": [{"uri": "coap://127.0.0.1:9"}]},
        name="lost",
    )
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    progress = tmp_path / "state" / "firmware.json"
    while not (progress.exists() and json.loads(progress.read_text())["phase"] == "rolled_back"):
        assert loop.time() < end, "no rollback after the commit window"
        await asyncio.sleep(0.1)
    assert (tmp_path / "rolled-back").exists()
    lost.signal(signal.SIGKILL)
    await lost.wait()
    # Back in the old system: the update failed, the package is still there.
    mark = server.mark()
    d = start_daemon({"firmware": fw})
    await expect_registration(server, d, after=mark, timeout=30)
    await wait_value(server, "/5/0/5", "8")
    assert await value(server, "/5/0/3") == "2"
    assert not (tmp_path / "committed").exists()


async def test_firmware_failures_give_their_results(tmp_path, server, start_daemon):
    d = start_daemon({"firmware": script_firmware(tmp_path, max_package_size=200_000)})
    await expect_event(server, d, "register", timeout=15)
    # Update outside Downloaded.
    assert (await server.execute("/5/0/2")).code == "4.05"
    # Not an image the check accepts: unsupported package type, back to Idle.
    assert (await push(server, b"\x7fELF" + bytes(5000))).code == "2.04"
    await wait_value(server, "/5/0/5", "6")
    assert await value(server, "/5/0/3") == "0"
    # Larger than the configured maximum: 4.13, not enough space.
    r = await push(server, package(300_000))
    assert r.code == "4.13", r
    assert await state(server) == ("0", "2")
    # An install that fails: back to Downloaded with result 8, and Update may be retried.
    broken = package(20_000) + b"broken"
    assert (await push(server, broken)).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_value(server, "/5/0/5", "8")
    assert await value(server, "/5/0/3") == "2"
    # Cancel: Idle with result 10, the staged package removed.
    assert (await server.execute("/5/0/10")).code == "2.04"
    # The integrator's policy defers the installation: Downloaded with result 11.
    assert (await push(server, package(20_000) + b"defer-me")).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_value(server, "/5/0/5", "11")
    assert await value(server, "/5/0/3") == "2"
    assert (await server.execute("/5/0/10")).code == "2.04"
    assert await state(server) == ("0", "10")
    assert not (tmp_path / "state" / "firmware" / "package").exists()
    # Empty URI: Idle with result 0; a scheme not in /5/0/8 is an unsupported protocol.
    assert (await server.write("/5/0/1", b"", TEXT)).code == "2.04"
    assert await state(server) == ("0", "0")
    assert (await server.write("/5/0/1", b"coaps://127.0.0.1/fw.img", TEXT)).code == "2.04"
    assert await state(server) == ("0", "9")


async def test_firmware_downloaded_package_survives_kill(tmp_path, server, start_daemon):
    fw = script_firmware(tmp_path)
    d = start_daemon({"firmware": fw})
    await expect_event(server, d, "register", timeout=15)
    image = package(50_000, version="3.1")
    assert (await push(server, image)).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    d = await restart(server, start_daemon, d, config_changes={"firmware": fw})
    await wait_value(server, "/5/0/3", "2")
    assert await value(server, "/5/0/7") == "3.1"
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_value(server, "/5/0/3", "3")
    await wait_for(installed(tmp_path, image), "the install script")
    assert os.path.exists(tmp_path / "state" / "firmware.json")


async def test_firmware_severity_and_defer_period_survive_kill(tmp_path, server, start_daemon):
    fw = script_firmware(tmp_path)
    d = start_daemon({"firmware": fw})
    await expect_event(server, d, "register", timeout=15)
    assert await value(server, "/5/0/11") == "1"  # the default: mandatory
    assert await value(server, "/5/0/13") == "0"
    assert (await server.write("/5/0/11", b"0", TEXT)).code == "2.04"
    assert (await server.write("/5/0/13", b"86400", TEXT)).code == "2.04"
    policy = tmp_path / "state" / "firmware-resources.json"
    await wait_for(lambda: policy.exists() and json.loads(policy.read_text())["max_defer"] == 86400, "the policy")
    # Kept with a package staged, across a hard stop, and after the update is done.
    assert (await push(server, package(30_000))).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    d = await restart(server, start_daemon, d, config_changes={"firmware": fw})
    await wait_value(server, "/5/0/11", "0")
    assert await value(server, "/5/0/13") == "86400"
    assert await value(server, "/5/0/3") == "2"
    assert (await server.execute("/5/0/10")).code == "2.04"
    assert (await server.write("/5/0/11", b"2", TEXT)).code == "2.04"
    await wait_for(lambda: json.loads(policy.read_text())["severity"] == 2, "the new severity")
    d = await restart(server, start_daemon, d, config_changes={"firmware": fw})
    await wait_value(server, "/5/0/11", "2")
    assert await value(server, "/5/0/13") == "86400"
    assert await value(server, "/5/0/3") == "0"


def uboot_rig(tmp_path, slot_size=8 * 1024 * 1024):
    """File-backed slots A and B, a U-Boot environment made by mkenvimage, a kernel
    command line saying slot A runs; returns the [firmware] table."""
    import subprocess

    (tmp_path / "env.txt").write_text("BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n")
    subprocess.run(
        ["mkenvimage", "-s", "0x4000", "-o", str(tmp_path / "uboot.env"), str(tmp_path / "env.txt")],
        check=True,
    )
    (tmp_path / "fw_env.config").write_text(f"{tmp_path / 'uboot.env'} 0x0000 0x4000\n")
    for slot in ("A", "B"):
        with open(tmp_path / f"{slot}.img", "wb") as f:
            f.truncate(slot_size)
    boot_slot(tmp_path, "A")
    return {
        "backend": "uboot",
        "slots": {"A": str(tmp_path / "A.img"), "B": str(tmp_path / "B.img")},
        "fw_env_config": str(tmp_path / "fw_env.config"),
        "cmdline": str(tmp_path / "cmdline"),
        "commit_window": 60,
    }


def boot_slot(tmp_path, slot):
    (tmp_path / "cmdline").write_text(f"console=ttyS0 rauc.slot={slot}\n")


def uboot_env(tmp_path, name):
    import subprocess

    out = subprocess.run(
        ["fw_printenv", "-c", str(tmp_path / "fw_env.config"), "-n", name],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def inline_tables(config):
    """to_toml has no nested tables: write slots as an inline table."""
    fw = dict(config)
    slots = fw.pop("slots")
    return fw, "slots = { " + ", ".join(f'{k} = "{v}"' for k, v in slots.items()) + " }"


def start_uboot(tmp_path, server, start_daemon, fw, name="lwm2md", server_uri=None):
    from bench.daemon import base_config, to_toml

    config = base_config(tmp_path, server_uri or server.uri, "bench-uboot")
    table, slots = inline_tables(fw)
    text = to_toml(config) + "[firmware]\n" + "\n".join(
        f"{k} = {json.dumps(v)}" for k, v in table.items()
    ) + "\n" + slots + "\n"
    return start_daemon(config=text, name=name)


async def test_firmware_uboot_ab_update_commit_and_fallback(tmp_path, server, start_daemon):
    fw = uboot_rig(tmp_path)
    d = start_uboot(tmp_path, server, start_daemon, fw)
    await expect_event(server, d, "register", timeout=15)
    image = package(2 * 1024 * 1024 + 5)
    assert (await push(server, image)).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert (await server.execute("/5/0/2")).code == "2.04"
    progress = tmp_path / "state" / "firmware.json"
    await wait_for(
        lambda: progress.exists() and json.loads(progress.read_text())["phase"] == "installed",
        "the installation",
    )
    assert (tmp_path / "B.img").read_bytes()[: len(image)] == image
    assert uboot_env(tmp_path, "BOOT_ORDER") == "B A"
    # Reboot into B; registered again: committed.
    d.signal(signal.SIGKILL)
    await d.wait()
    boot_slot(tmp_path, "B")
    mark = server.mark()
    d = start_uboot(tmp_path, server, start_daemon, fw)
    await expect_registration(server, d, after=mark, timeout=30)
    await wait_value(server, "/5/0/5", "1")
    assert await value(server, "/5/0/3") == "0"
    assert uboot_env(tmp_path, "BOOT_ORDER") == "B A"
    assert uboot_env(tmp_path, "BOOT_B_LEFT") == "3"

    # A second update to A, but the bootloader falls back to B: result 8, B stays good.
    assert (await push(server, package(10_000, version="3.0"))).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert (await server.execute("/5/0/2")).code == "2.04"
    await wait_for(
        lambda: progress.exists() and json.loads(progress.read_text())["phase"] == "installed",
        "the second installation",
    )
    assert uboot_env(tmp_path, "BOOT_ORDER") == "A B"
    d.signal(signal.SIGKILL)
    await d.wait()
    mark = server.mark()
    d = start_uboot(tmp_path, server, start_daemon, fw)  # still B on the command line
    await expect_registration(server, d, after=mark, timeout=30)
    await wait_value(server, "/5/0/5", "8")
    assert await value(server, "/5/0/3") == "2"
    assert uboot_env(tmp_path, "BOOT_ORDER") == "B A"
    assert uboot_env(tmp_path, "BOOT_B_LEFT") == "3"


async def test_firmware_kill_9_at_random_points_resumes_or_fails_cleanly(tmp_path, server, start_daemon):
    """The daemon is killed at a random instant of push, check, install or commit, over
    and over; each restart (a reboot into whatever slot the bootloader would pick) must
    find a consistent state, and the running slot is never left marked bad."""
    import random

    rnd = random.Random(20261125)
    fw = uboot_rig(tmp_path)
    progress = tmp_path / "state" / "firmware.json"
    staged = tmp_path / "state" / "firmware" / "package"
    booted = "A"
    commits = 0
    for round_ in range(16):
        mark = server.mark()
        d = start_uboot(tmp_path, server, start_daemon, fw)
        await expect_registration(server, d, after=mark, timeout=30)

        async def drive():
            st = await value(server, "/5/0/3")
            if st == "0":
                await push(server, package(256 * 1024, version=f"r{round_}"))
                await wait_value(server, "/5/0/3", "2")
                st = "2"
            if st == "2":
                await server.execute("/5/0/2")

        task = asyncio.create_task(drive())
        await asyncio.sleep(rnd.uniform(0.0, 2.0))
        d.signal(signal.SIGKILL)
        await d.wait()
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        record = json.loads(progress.read_text()) if progress.exists() else None
        if record and record["phase"] == "installed" and record.get("target"):
            booted = record["target"]  # the reboot takes the new slot
        boot_slot(tmp_path, booted)

        mark = server.mark()
        d = start_uboot(tmp_path, server, start_daemon, fw)
        await expect_registration(server, d, after=mark, timeout=30)
        # Settled: an update waiting for its commit gets it right after registering.
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while (st := await value(server, "/5/0/3")) in ("1", "3"):
            assert loop.time() < end, f"state stuck at {st} after restart {round_}"
            await asyncio.sleep(0.1)
        result = await value(server, "/5/0/5")
        print(f"round {round_}: killed in phase {record and record['phase']}, now {st}/{result}")
        if result == "1":
            commits += 1
        assert st in ("0", "2"), (round_, st)
        if st == "2":
            assert staged.exists() and json.loads(progress.read_text())["phase"] == "downloaded"
        else:
            assert not progress.exists() and not staged.exists(), round_
        # The running slot is never out of attempts, and is first in the boot order
        # unless an installed update is about to be tried.
        assert uboot_env(tmp_path, f"BOOT_{booted}_LEFT") != "0", (round_, booted)
        if st == "2" or result != "1":
            assert uboot_env(tmp_path, "BOOT_ORDER").startswith(booted), round_
        d.signal(signal.SIGKILL)
        await d.wait()
    # The random instants cover at least one full update.
    assert commits >= 1


@contextlib.contextmanager
def small_fs(tmp_path, kind: str, size_kib: int):
    """A small filesystem mounted for the staging directory: a tmpfs (RAM) or a
    loop-mounted ext4 image (a disk); skips the test where mounting is not allowed."""
    import subprocess

    where = tmp_path / f"small-{kind}"
    where.mkdir()
    if kind == "tmpfs":
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(where)]
    else:
        image = tmp_path / f"small-{kind}.img"
        with open(image, "wb") as f:
            f.truncate(size_kib * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        cmd = ["mount", "-o", "loop", str(image), str(where)]
    if subprocess.run(cmd).returncode != 0:
        pytest.skip(f"cannot mount a {kind} here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)])


async def test_firmware_disk_full_gives_result_2(tmp_path, server, start_daemon):
    """The staging directory on a 1 MiB ext4 disk: a 2 MiB push runs out of flash."""
    with small_fs(tmp_path, "ext4", 1024) as staging:
        d = start_daemon({"firmware": script_firmware(tmp_path, staging_dir=str(staging))})
        await expect_event(server, d, "register", timeout=15)
        r = await push(server, package(2 * 1024 * 1024))
        assert r.code == "5.00", r
        assert await state(server) == ("0", "2")
        assert not (staging / "package").exists()
        # Room again: a package that fits goes through.
        assert (await push(server, package(200_000))).code == "2.04"
        await wait_value(server, "/5/0/3", "2")
        await d.stop()


async def test_firmware_staging_in_full_ram_gives_result_3(tmp_path, server, start_daemon):
    """The staging directory on a 1 MiB tmpfs: a package that does not fit is out of RAM
    while downloading, pushed or pulled."""
    from test_e2e_firmware_pull import ImageServer, write_uri

    with small_fs(tmp_path, "tmpfs", 1024) as staging:
        d = start_daemon({"firmware": script_firmware(tmp_path, staging_dir=str(staging))})
        await expect_event(server, d, "register", timeout=15)
        r = await push(server, package(2 * 1024 * 1024))
        assert r.code == "5.00", r
        assert await state(server) == ("0", "3")
        assert not (staging / "package").exists()
        async with ImageServer(package(1536 * 1024)) as src:
            await write_uri(server, src.uri)
            await wait_value(server, "/5/0/5", "3")
            assert await value(server, "/5/0/3") == "0"
        assert not (staging / "package").exists()
        assert (await push(server, package(200_000))).code == "2.04"
        await wait_value(server, "/5/0/3", "2")
        await d.stop()


def signed(tmp_path, image: bytes) -> bytes:
    """image | signature | length (u32 BE) | "LWSG", signed with openssl dgst."""
    import subprocess

    (tmp_path / "to-sign").write_bytes(image)
    subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(tmp_path / "fw.key"), "-out", str(tmp_path / "sig"),
         str(tmp_path / "to-sign")],
        check=True,
    )
    sig = (tmp_path / "sig").read_bytes()
    return image + sig + len(sig).to_bytes(4, "big") + b"LWSG"


async def test_firmware_uboot_signed_images(tmp_path, server, start_daemon):
    import subprocess

    subprocess.run(["openssl", "genrsa", "-out", str(tmp_path / "fw.key"), "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(tmp_path / "fw.key"), "-pubout", "-out", str(tmp_path / "fw.pub")],
                   check=True, capture_output=True)
    fw = {**uboot_rig(tmp_path), "signature_key": str(tmp_path / "fw.pub")}
    d = start_uboot(tmp_path, server, start_daemon, fw)
    await expect_event(server, d, "register", timeout=15)
    image = package(300_000)
    # Unsigned, and signed but altered: integrity check failure, nothing installed.
    for bad in (image, bytearray(signed(tmp_path, image))):
        if isinstance(bad, bytearray):
            bad[1000] ^= 1
        assert (await push(server, bytes(bad))).code == "2.04"
        await wait_value(server, "/5/0/5", "5")
        assert await value(server, "/5/0/3") == "0"
        await server.write("/5/0/1", b"", TEXT)
    assert uboot_env(tmp_path, "BOOT_ORDER") == "A B"
    # Signed: the image without its trailer goes to slot B.
    assert (await push(server, signed(tmp_path, image))).code == "2.04"
    await wait_value(server, "/5/0/3", "2")
    assert (await server.execute("/5/0/2")).code == "2.04"
    progress = tmp_path / "state" / "firmware.json"
    await wait_for(
        lambda: progress.exists() and json.loads(progress.read_text())["phase"] == "installed",
        "the installation",
    )
    slot = (tmp_path / "B.img").read_bytes()
    assert slot[: len(image)] == image and slot[len(image) : len(image) + 16] == bytes(16)
