"""The Debian package: its contents, its unit, and the daemon under a real systemd.

The .deb is $LWM2MD_DEB, else built with scripts/package. The systemd tests boot a Debian
bookworm root (made once with debootstrap, cached) with systemd-nspawn and install the
package in it; the container shares the host's loopback, so the daemon inside registers
with the bench server on the host. They need root, debootstrap and systemd-container, and
fail (never skip) without them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.daemon import REPO, to_toml
from bench.nspawn import EXIT_REBOOT, Container, NspawnError, ensure_root, require_tools

UNIT = "/usr/lib/systemd/system/lwm2md.service"
CONFFILE = "/etc/lwm2md/lwm2md.toml"
SECURITY_LIMIT = 2.5

_names = itertools.count(1)

# The first test builds the release package (minutes on a cold target directory) or the
# bookworm root (about a minute, once).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def deb() -> Path:
    env = os.environ.get("LWM2MD_DEB")
    if env:
        path = Path(env)
        assert path.is_file(), f"LWM2MD_DEB={env} is not a file"
        return path
    proc = subprocess.run([str(REPO / "scripts" / "package")], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"scripts/package failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file(), f"scripts/package printed {path}, which is not a file"
    return path


@pytest.fixture(scope="module")
def deb_dir(deb, tmp_path_factory) -> Path:
    """A directory holding only the package, bound read-only into containers as /debs."""
    d = tmp_path_factory.mktemp("debs")
    shutil.copy(deb, d / "lwm2md.deb")
    return d


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(d)], check=True)
    return d


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def control_file(deb: Path, name: str) -> str:
    tar = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    return subprocess.run(["tar", "-xO", f"./{name}"], input=tar, capture_output=True, check=True).stdout.decode()


# The package itself.


def test_control_fields(deb):
    assert field(deb, "Package") == "lwm2md"
    depends = [d.strip().split(" ")[0] for d in field(deb, "Depends").split(",")]
    assert sorted(depends) == ["adduser", "libc6", "libgcc-s1", "libssl3", "polkitd"], depends


def test_contents(deb):
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in listing.splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        entries[path.removeprefix(".")] = (mode, owner)
    expected = {
        "/usr/bin/lwm2md": "-rwxr-xr-x",
        UNIT: "-rw-r--r--",
        CONFFILE: "-rw-r--r--",
        "/usr/share/polkit-1/rules.d/50-lwm2md.rules": "-rw-r--r--",
        "/usr/share/doc/lwm2md/copyright": "-rw-r--r--",
        "/usr/share/doc/lwm2md/changelog.Debian.gz": "-rw-r--r--",
        "/usr/share/lintian/overrides/lwm2md": "-rw-r--r--",
        "/usr/share/dbus-1/system.d/org.lwm2md.Daemon.conf": "-rw-r--r--",
        "/usr/share/man/man1/lwm2md.1.gz": "-rw-r--r--",
        "/usr/share/man/man1/lwm2md-check.1.gz": "-rw-r--r--",
        "/usr/share/man/man1/lwm2md-status.1.gz": "-rw-r--r--",
        "/usr/share/bash-completion/completions/lwm2md": "-rw-r--r--",
        "/usr/share/zsh/vendor-completions/_lwm2md": "-rw-r--r--",
        "/usr/share/fish/vendor_completions.d/lwm2md.fish": "-rw-r--r--",
        "/usr/share/lwm2md/objects/gateway-health.xml": "-rw-r--r--",
    }
    for path, mode in expected.items():
        assert path in entries, f"{path} missing from the package:\n{listing}"
        assert entries[path] == (mode, "0/0"), f"{path}: {entries[path]}"
    assert control_file(deb, "conffiles").split() == [CONFFILE]


def test_conffile_is_safe_without_a_server(unpacked):
    text = (unpacked / CONFFILE.lstrip("/")).read_text()
    assert not re.search(r"^\s*\[\[server\]\]", text, re.M), "the shipped configuration names a server"
    assert re.search(r"^#\[\[server\]\]", text, re.M), "the example server account is gone"


def test_enabled_but_not_started_on_install(deb):
    postinst = control_file(deb, "postinst")
    assert "deb-systemd-helper enable lwm2md.service" in postinst
    # Started only by the operator once a server is configured; upgrades restart it only
    # when it runs.
    assert "deb-systemd-invoke start" not in postinst
    assert "deb-systemd-invoke try-restart lwm2md.service" in postinst
    assert "adduser --system --group" in postinst


def test_lintian_clean(deb):
    assert shutil.which("lintian"), "lintian is missing: install the Debian package lintian (.ci/run does)"
    proc = subprocess.run(["lintian", "--fail-on", "error,warning", str(deb)], capture_output=True, text=True)
    assert proc.returncode == 0, f"lintian:\n{proc.stdout}{proc.stderr}"


def test_unit_security_exposure(unpacked):
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unpacked / UNIT.lstrip("/"))],
        capture_output=True, text=True,
    )
    m = re.search(r"Overall exposure level for lwm2md\.service: (\d+\.\d+)", proc.stdout)
    assert m, f"no exposure level in:\n{proc.stdout}{proc.stderr}"
    exposure = float(m.group(1))
    print(f"systemd-analyze security: {exposure}")
    assert exposure <= SECURITY_LIMIT, proc.stdout


# Under systemd.


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        require_tools()
        return ensure_root()
    except NspawnError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def container(root, deb_dir, tmp_path):
    c = Container(root, f"lwm2md-test-{os.getpid()}-{next(_names)}", {deb_dir: "/debs"}, log=tmp_path / "console.log")
    try:
        c.boot()
        yield c
    finally:
        c.kill()
        # Shown by pytest when the test failed.
        print("--- container console, last lines ---")
        print(c.console())


async def sh(c: Container, *args: str, check: bool = True, input: str | None = None):
    # The bench server answers on this event loop: container commands run beside it.
    return await asyncio.to_thread(c.run, *args, check=check, input=input)


async def unit_props(c: Container, *names: str) -> dict[str, str]:
    out = (await sh(c, "systemctl", "show", "-p", ",".join(names), "lwm2md.service")).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


async def install(c: Container) -> None:
    await sh(c, "dpkg", "-i", "/debs/lwm2md.deb")


async def configure(c: Container, server, endpoint: str, **extra) -> None:
    config = {"endpoint": endpoint, "log_level": "debug", **extra,
              "server": [{"uri": server.uri, "lifetime": 300}]}
    await asyncio.to_thread(c.write, CONFFILE, to_toml(config))


async def journal(c: Container) -> str:
    return (await sh(c, "journalctl", "-u", "lwm2md", "--no-pager", "-o", "cat")).stdout


async def test_unit_verifies_where_installed(container):
    await install(container)
    proc = await sh(container, "systemd-analyze", "verify", "--man=no", "lwm2md.service", check=False)
    assert proc.returncode == 0 and not proc.stderr.strip(), f"systemd-analyze verify:\n{proc.stdout}{proc.stderr}"


async def test_service_lifecycle(container, server, endpoint):
    c = container
    await install(c)

    # Installed: enabled for the next boot, not started, configuration private to the daemon.
    assert (await sh(c, "systemctl", "is-enabled", "lwm2md", check=False)).stdout.strip() == "enabled"
    assert (await sh(c, "systemctl", "is-active", "lwm2md", check=False)).stdout.strip() == "inactive"
    user = (await sh(c, "getent", "passwd", "lwm2md")).stdout.strip().split(":")
    uid, gid = user[2], user[3]
    assert int(uid) < 1000, f"lwm2md is not a system user: {user}"
    assert "lwm2md" in (await sh(c, "id", "-nG", "lwm2md")).stdout.split()
    assert "dialout" in (await sh(c, "id", "-nG", "lwm2md")).stdout.split()
    stat = (await sh(c, "stat", "-c", "%U:%G %a", CONFFILE, "/etc/lwm2md/conf.d")).stdout.split("\n")
    assert stat[:2] == ["root:lwm2md 640", "root:lwm2md 750"], stat

    # Configured and started: registered, logged to the journal, unprivileged.
    await configure(c, server, endpoint)
    await sh(c, "systemctl", "restart", "lwm2md")
    reg = await server.wait_registered(timeout=30)
    assert reg.endpoint == endpoint
    props = await unit_props(c, "ActiveState", "SubState", "MainPID")
    assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
    status = (await sh(c, "cat", f"/proc/{props['MainPID']}/status")).stdout
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
    assert set(uids) == {uid}, f"lwm2md runs with Uid {uids}, not {uid}"
    caps = re.search(r"^CapEff:\s+(\S+)$", status, re.M).group(1)
    assert int(caps, 16) == 0, f"effective capabilities {caps}"
    state = (await sh(c, "stat", "-c", "%U %a", "/var/lib/lwm2md")).stdout.strip()
    assert state == "lwm2md 750", state
    for _ in range(100):
        lines = [line.strip() for line in (await journal(c)).splitlines()]
        if any(line.startswith("registered") for line in lines):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("no 'registered' line in journalctl -u lwm2md:\n" + "\n".join(lines))

    # Stopped: de-registered.
    mark = server.mark()
    await sh(c, "systemctl", "stop", "lwm2md")
    await server.wait_event("deregister", after=mark, timeout=15)

    # A configuration error: failed with 78 and left so, not restarted.
    await asyncio.to_thread(c.write, CONFFILE, to_toml({"no_such_key": 1, "server": [{"uri": server.uri}]}))
    proc = await sh(c, "systemctl", "restart", "lwm2md", check=False)
    assert proc.returncode != 0
    props = await unit_props(c, "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert props == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "78", "NRestarts": "0"}, props
    assert "no_such_key" in await journal(c)

    # Purged: user, state and configuration gone.
    await sh(c, "dpkg", "--purge", "lwm2md")
    assert (await sh(c, "getent", "passwd", "lwm2md", check=False)).returncode == 2
    assert (await sh(c, "getent", "group", "lwm2md", check=False)).returncode == 2
    for path in ("/var/lib/lwm2md", "/etc/lwm2md", "/usr/bin/lwm2md"):
        assert (await sh(c, "test", "-e", path, check=False)).returncode == 1, f"{path} survived the purge"


async def test_reboot_through_logind_and_polkit(container, server, endpoint):
    """Execute /3/0/4 from the unprivileged daemon: polkit lets logind reboot the machine."""
    c = container
    await install(c)
    await configure(c, server, endpoint, device={"reboot": "logind"})
    await sh(c, "systemctl", "restart", "lwm2md")
    await server.wait_registered(timeout=30)
    mark = server.mark()
    resp = await server.execute("/3/0/4")
    assert resp.code == "2.04", resp
    # Going down, systemd stops the daemon, which de-registers; then the container reboots,
    # which ends systemd-nspawn with its reboot status.
    await server.wait_event("deregister", after=mark, timeout=30)
    status = await asyncio.to_thread(c.wait_exit, 60)
    assert status == EXIT_REBOOT, f"systemd-nspawn ended with {status}, not {EXIT_REBOOT} (reboot)"


async def test_timezone_through_timedated_and_polkit(container, server, endpoint):
    """Write /3/0/15 from the unprivileged daemon: polkit lets timedated set the time zone.
    (Setting the clock needs CAP_SYS_TIME, which the container does not have.)"""
    c = container
    await install(c)
    await configure(c, server, endpoint)
    await sh(c, "systemctl", "restart", "lwm2md")
    await server.wait_registered(timeout=30)
    resp = await server.write("/3/0/15", b"Europe/Paris", 0)
    assert resp.code == "2.04", resp
    # The daemon answers before timedated has applied the change.
    for _ in range(100):
        zone = (await sh(c, "timedatectl", "show", "-p", "Timezone", "--value")).stdout.strip()
        if zone == "Europe/Paris":
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"time zone still {zone}; journal:\n{await journal(c)}")
    assert (await sh(c, "readlink", "/etc/localtime")).stdout.strip().endswith("/Europe/Paris")


async def status_json(c: Container, predicate, timeout: float = 30.0) -> dict:
    """`lwm2md status -o json` as root until predicate(status) holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        proc = await sh(c, "lwm2md", "status", "-o", "json", check=False)
        if proc.returncode == 0 and predicate(json.loads(proc.stdout)):
            return json.loads(proc.stdout)
        if loop.time() > deadline:
            pytest.fail(f"lwm2md status: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
        await asyncio.sleep(0.2)


async def test_status_and_check_on_the_system_bus(container, server, endpoint):
    """`lwm2md status` as root reaches the running service over the real system bus with the
    shipped policy; other users are refused; `lwm2md check` passes on the installed system."""
    c = container
    await install(c)
    for page in ("lwm2md.1.gz", "lwm2md-check.1.gz", "lwm2md-status.1.gz"):
        await sh(c, "test", "-s", f"/usr/share/man/man1/{page}")
    proc = await sh(c, "lwm2md", "status", check=False)
    assert proc.returncode == 3 and "not running" in proc.stderr, (proc.returncode, proc.stderr)

    await configure(c, server, endpoint)
    await sh(c, "systemctl", "restart", "lwm2md")
    await server.wait_registered(timeout=30)
    status = await status_json(c, lambda s: s["servers"] and s["servers"][0]["registered"])
    assert status["endpoint"] == endpoint
    assert status["servers"][0]["uri"] == server.uri
    human = await sh(c, "lwm2md", "status")
    assert f"server 1 {server.uri}: registered" in human.stdout, human.stdout

    # Neither root nor in the group lwm2md: the bus policy refuses the call.
    proc = await sh(c, "runuser", "-u", "nobody", "--", "lwm2md", "status", check=False)
    assert proc.returncode == 1 and "bus policy" in proc.stderr, (proc.returncode, proc.stderr)

    proc = await sh(c, "lwm2md", "check", "-o", "json", check=False)
    report = json.loads(proc.stdout)
    checks = {ch["name"]: ch for ch in report["checks"]}
    for name in ("config", "state_dir", "dns server 1", "coap ping server 1", "system bus", "dbus policy"):
        assert checks[name]["status"] == "ok", checks.get(name, report)
    assert proc.returncode == 0, proc.stdout

    await sh(c, "systemctl", "stop", "lwm2md")
    proc = await sh(c, "lwm2md", "status", check=False)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)

    # What an operator gets wrong: a state directory handed to root, a key file the daemon
    # (user lwm2md) cannot read.
    await sh(c, "chown", "root:root", "/var/lib/lwm2md")
    await asyncio.to_thread(c.write, "/etc/lwm2md/server.psk", "00112233445566778899aabbccddeeff\n")
    await sh(c, "chmod", "600", "/etc/lwm2md/server.psk")
    config = {"endpoint": endpoint, "server": [{"uri": "coaps://127.0.0.1:1", "psk_identity": "gw",
                                                "psk_key_file": "/etc/lwm2md/server.psk"}]}
    await asyncio.to_thread(c.write, CONFFILE, to_toml(config))
    proc = await sh(c, "lwm2md", "check", "-o", "json", check=False)
    assert proc.returncode == 1, proc.stdout
    checks = {ch["name"]: ch for ch in json.loads(proc.stdout)["checks"]}
    state = checks["state_dir"]
    assert state["status"] == "warning" and "chown -R lwm2md: /var/lib/lwm2md" in state["remedy"], state
    key = checks["psk_key_file server 1"]
    assert key["status"] == "error" and key["remedy"] == "chown lwm2md: /etc/lwm2md/server.psk", key
