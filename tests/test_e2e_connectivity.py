"""Objects 4 and 7 filled by the host backend from this machine's own interfaces."""

import asyncio
import json
import socket
import time
from pathlib import Path

from bench import senml
from bench.daemon import expect_event
from bench.server import SENML_JSON


async def read_values(server, path: str) -> dict:
    r = await server.read(path, accept=SENML_JSON)
    assert r.code == "2.05", (path, r)
    return senml.decode_json(r.payload)


async def wait_for(server, path: str, check, timeout: float = 20.0) -> dict:
    """Reads `path` until `check(values)` holds: the backend samples on its own schedule."""
    deadline = time.monotonic() + timeout
    while True:
        values = await read_values(server, path)
        if check(values):
            return values
        assert time.monotonic() < deadline, f"{path} never satisfied the check: {values}"
        await asyncio.sleep(0.2)


def multiple(values: dict, prefix: str) -> list:
    return [v for k, v in sorted(values.items()) if k.startswith(prefix + "/")]


async def wait_collecting(tmp_path, collecting: bool):
    """Waits until the daemon's connectivity task has carried out Start or Stop (the CoAP
    response does not wait for it): the collection's state file says so."""
    state = tmp_path / "state" / "connectivity-statistics.json"
    deadline = time.monotonic() + 15
    while True:
        try:
            if json.loads(state.read_text()).get("collecting") is collecting:
                return
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, f"the collection never became collecting={collecting}"
        await asyncio.sleep(0.05)


def lo_counter(name: str) -> int:
    return int(Path(f"/sys/class/net/lo/statistics/{name}").read_text())


async def start(server, start_daemon, interface="lo"):
    after = len(server.events)
    d = start_daemon({"connectivity": {"backend": "host", "interface": interface, "interval": 1}})
    ev = await expect_event(server, d, "register", after=after, timeout=15)
    return d, ev


async def test_loopback_addresses_in_object_4(server, start_daemon):
    _, ev = await start(server, start_daemon)
    targets = {link.target: link.attrs for link in ev.links}
    assert "/4/0" in targets and targets.get("/4", {}).get("ver") == "1.3", targets
    assert "/7/0" in targets or "/7" in targets, targets
    values = await wait_for(server, "/4/0", lambda v: "/4/0/4/0" in v)
    ips = multiple(values, "/4/0/4")
    assert ips[0] == "127.0.0.1", ips
    if Path("/proc/net/if_inet6").read_text().find(" lo\n") >= 0:
        assert "::1" in ips, ips
    # Loopback is no bearer object 4 can name, and has neither radio nor router.
    for r in (0, 2, 3, 5, 8, 9, 10, 12):
        assert f"/4/0/{r}" not in values, values


async def test_statistics_count_loopback_traffic_between_start_and_stop(server, start_daemon, tmp_path):
    await start(server, start_daemon)
    r = await server.execute("/7/0/6")
    assert r.code == "2.04", r
    await wait_collecting(tmp_path, True)
    values = await read_values(server, "/7/0")
    assert values["/7/0/2"] == 0 and values["/7/0/3"] == 0, values

    # 200 KiB over loopback, seen leaving and arriving on lo.
    before = lo_counter("tx_bytes")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(200):
        tx.sendto(b"x" * 1024, rx.getsockname())
    tx.close()
    rx.close()
    sent_kib = (lo_counter("tx_bytes") - before) // 1024
    assert sent_kib >= 200

    r = await server.execute("/7/0/7")
    assert r.code == "2.04", r
    await wait_collecting(tmp_path, False)
    values = await wait_for(server, "/7/0", lambda v: v.get("/7/0/2", 0) >= 200)
    # Loopback sends what it receives; the daemon's own CoAP traffic counts too.
    assert values["/7/0/3"] >= 200, values
    assert values["/7/0/5"] > 0, values
    stopped = values["/7/0/2"]
    # Stopped: the figures stay however much more goes over the link.
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(100):
        tx.sendto(b"x" * 1024, ("127.0.0.1", 9))
    tx.close()
    await asyncio.sleep(1.5)
    assert (await read_values(server, "/7/0"))["/7/0/2"] == stopped


async def test_statistics_survive_a_restart(server, start_daemon, tmp_path):
    d, _ = await start(server, start_daemon)
    assert (await server.execute("/7/0/6")).code == "2.04"
    await wait_collecting(tmp_path, True)
    await d.stop()

    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(100):
        tx.sendto(b"x" * 1024, ("127.0.0.1", 9))
    tx.close()

    await start(server, start_daemon)
    # Traffic while the daemon was down belongs to the collection as well.
    await wait_for(server, "/7/0", lambda v: v.get("/7/0/2", 0) >= 100)


async def test_an_absent_interface_is_reported_once_and_leaves_object_4_empty(server, start_daemon):
    d, _ = await start(server, start_daemon, interface="nosuch0")
    deadline = time.monotonic() + 15
    while 'no network interface "nosuch0"' not in d.log():
        assert time.monotonic() < deadline, d.log()
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)  # a few more looks at the interface
    values = await read_values(server, "/4/0")
    assert not any(k.startswith("/4/0/") for k in values), values
    assert d.log().count('no network interface "nosuch0"') == 1, d.log()
