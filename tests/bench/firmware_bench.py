"""Firmware transfer figures: push (Block1 to /5/0/0 from the aiocoap bench server) and
pull (http:// from a local server) of an image of SIZE MiB on loopback, with the
daemon's resident memory before and its peak during each transfer.

    python -m bench.firmware_bench LWM2MD_BINARY [SIZE_MIB]

run from tests/ (scripts/bench does). The install step is `true`: only the transfer
and the staging file are measured.
"""

import asyncio
import http.server
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.daemon import Daemon, base_config, expect_event, to_toml
from bench.server import TEXT, LwM2MServer


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """Samples a process's VmRSS every few milliseconds while running."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = 0
        self._task = None

    async def _run(self):
        while True:
            self.peak = max(self.peak, rss_kib(self.pid))
            await asyncio.sleep(0.005)

    def __enter__(self):
        self.peak = rss_kib(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc):
        self._task.cancel()


async def value(server, path):
    r = await server.read(path, accept=TEXT)
    return r.payload.decode()


async def wait_state(server, want, timeout=600):
    end = time.monotonic() + timeout
    while (got := await value(server, "/5/0/3")) != want:
        if time.monotonic() > end:
            raise TimeoutError(f"/5/0/3 stayed {got}")
        await asyncio.sleep(0.05)


async def main(binary: str, size_mib: int) -> None:
    os.environ["LWM2MD_BIN"] = binary
    size = size_mib * 1024 * 1024
    image = os.urandom(size)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "www").mkdir()
        (tmp / "www" / "image.bin").write_bytes(image)
        handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
            *a, directory=str(tmp / "www"), **kw
        )
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        # A whole push is one request for the bench server: give it the time it takes.
        async with LwM2MServer(request_timeout=3600) as server:
            config = base_config(tmp, server.uri, "firmware-bench")
            config["log_level"] = "warn"
            config["firmware"] = {"backend": "script", "install": ["true"]}
            (tmp / "state").mkdir()
            (tmp / "lwm2md.toml").write_text(to_toml(config))
            d = Daemon(tmp / "lwm2md.toml", tmp / "lwm2md.log")
            try:
                await expect_event(server, d, "register", timeout=30)
                await asyncio.sleep(0.5)
                before = rss_kib(d.pid)
                with PeakRss(d.pid) as peak:
                    t0 = time.monotonic()
                    r = await server.write("/5/0/0", image, 42)
                    assert r.code == "2.04", r
                    await wait_state(server, "2")
                    push_s = time.monotonic() - t0
                push_peak = peak.peak
                await server.write("/5/0/1", b"", TEXT)
                await wait_state(server, "0")
                before_pull = rss_kib(d.pid)
                uri = f"http://127.0.0.1:{httpd.server_address[1]}/image.bin"
                with PeakRss(d.pid) as peak:
                    t0 = time.monotonic()
                    await server.write("/5/0/1", uri.encode(), TEXT)
                    await wait_state(server, "2")
                    pull_s = time.monotonic() - t0
                pull_peak = peak.peak
            finally:
                await d.stop()
                httpd.shutdown()
    mib = size / (1024 * 1024)
    print(f"firmware push, {mib:.0f} MiB over CoAP Block1 (1024-byte blocks, aiocoap client)")
    print(f"  {mib / push_s:8.2f} MiB/s   RSS {before} KiB before, peak {push_peak} KiB"
          f" (+{push_peak - before} KiB; budget +2048)")
    print(f"firmware pull, {mib:.0f} MiB over http://")
    print(f"  {mib / pull_s:8.2f} MiB/s   RSS {before_pull} KiB before, peak {pull_peak} KiB"
          f" (+{pull_peak - before_pull} KiB; budget +2048)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200))
