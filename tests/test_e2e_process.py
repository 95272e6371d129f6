"""The lwm2md process: systemd notification, configuration errors, hostile datagrams."""

import asyncio
import re
import socket

import pytest

from bench.daemon import NotifySocket, expect_event, to_toml, base_config


async def test_sd_notify_ready_and_status(server, start_daemon, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        daemon = start_daemon(env={"NOTIFY_SOCKET": str(notify.path)})
        await notify.wait_for(lambda line: line == "READY=1", daemon)
        await expect_event(server, daemon, "register")
        status = await notify.wait_for(lambda line: line.startswith("STATUS=") and "registered" in line, daemon)
        assert server.uri in status or "127.0.0.1" in status, status
    finally:
        notify.close()


async def test_sd_notify_watchdog(server, start_daemon, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        daemon = start_daemon(env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"})
        await notify.wait_for(lambda line: line == "WATCHDOG=1", daemon, timeout=10)
        assert daemon.alive()
    finally:
        notify.close()


def _bad_config(tmp_path, uri, where):
    config = base_config(tmp_path, uri, "bench-bad")
    text = to_toml(config).splitlines()
    if where == "top":
        # After the top-level keys, before the first table.
        index = next(i for i, line in enumerate(text) if line.startswith("["))
        text.insert(index, "bogus_key = 1")
    else:
        index = text.index(f"[{where}]") + 1
        text.insert(index, "bogus_key = 1")
    return "\n".join(text) + "\n", index + 1


@pytest.mark.parametrize("where", ["top", "coap", "device"])
async def test_unknown_config_key_exits_78(server, start_daemon, tmp_path, where):
    text, line = _bad_config(tmp_path, server.uri, where)
    daemon = start_daemon(config=text, name="bad")
    assert await daemon.wait(timeout=15) == 78
    log = daemon.log()  # stderr
    assert "bogus_key" in log
    assert "bad.toml" in log
    assert re.search(rf"(line\s*{line}\b|:{line}:\d+)", log), f"line {line} not named in:\n{log}"
    assert server.events == []


async def test_malformed_datagrams_do_not_kill_the_client(registered):
    server, daemon, reg = registered
    port = reg.remote.sockaddr[1]
    junk = [
        b"",
        b"\x40",  # a header cut short
        b"\xff" * 64,
        b"\x50\x01\x12\x34",  # version 1 NON GET, then nothing
        b"\x44\x01\x12\x34\xde\xad\xbe\xef\xbb" + b"3" * 3,  # options past the end
        b"\x48\x01\x00\x01" + b"\x00" * 8 + b"\xd0",  # extended option delta cut off
        b"\x40\x01\x00\x02\xff",  # payload marker with no payload
        b"\x80\x01\x00\x03",  # version 2
        bytes(range(256)) * 4,
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for data in junk:
            s.sendto(data, ("127.0.0.1", port))
    await asyncio.sleep(0.5)
    assert daemon.alive()
    r = await server.read("/3/0/0")
    assert r.code == "2.05" and r.payload
