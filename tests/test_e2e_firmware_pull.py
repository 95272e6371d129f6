"""Firmware packages pulled from a Package URI: coap:// from an aiocoap server serving
Block2 itself (so that it can fail blocks on purpose), resumed at the block position
after an error and after a daemon restart."""

import asyncio
import signal
import time

import aiocoap
import aiocoap.interfaces
import aiocoap.optiontypes
import aiocoap.resource
import pytest
from aiocoap import Code, Message

from bench.daemon import expect_event, expect_registration
from bench.server import TEXT
from test_e2e_firmware import package, script_firmware, state, value, wait_for, wait_value


class Image(aiocoap.interfaces.Resource):
    """Serves `data` in the Block2 slices asked for, counting requests per block; blocks
    in `fail` are answered 5.03 once; `slow` delays every answer."""

    def __init__(self, data: bytes):
        self.data = data
        self.requests: dict[int, int] = {}
        self.fail: set[int] = set()
        self.slow = 0.0

    async def needs_blockwise_assembly(self, request):
        return False

    async def render(self, request):
        if request.code != Code.GET:
            return Message(code=Code.METHOD_NOT_ALLOWED)
        b2 = request.opt.block2
        num, szx = (b2.block_number, b2.size_exponent) if b2 is not None else (0, 6)
        size = 1 << (szx + 4)
        self.requests[num] = self.requests.get(num, 0) + 1
        if self.slow:
            await asyncio.sleep(self.slow)
        if num in self.fail:
            self.fail.discard(num)
            return Message(code=Code.SERVICE_UNAVAILABLE)
        start = num * size
        if start >= len(self.data) and start > 0:
            return Message(code=Code.BAD_OPTION)
        chunk = self.data[start : start + size]
        more = start + size < len(self.data)
        msg = Message(code=Code.CONTENT, payload=chunk)
        msg.opt.block2 = aiocoap.optiontypes.BlockOption.BlockwiseTuple(num, more, szx)
        if num == 0:
            msg.opt.size2 = len(self.data)
        return msg

    async def render_to_pipe(self, request):
        # aiocoap >= 0.4.8 calls this on interfaces.Resource implementations.
        response = await self.render(request.request)
        request.add_response(response, is_last=True)


class ImageServer:
    def __init__(self, data: bytes):
        self.image = Image(data)
        self.context = None

    async def __aenter__(self):
        site = aiocoap.resource.Site()
        site.add_resource(["fw", "image.bin"], self.image)
        self.context = await aiocoap.Context.create_server_context(
            site, bind=("127.0.0.1", 0), transports=["udp6"]
        )
        return self

    async def __aexit__(self, *exc):
        await self.context.shutdown()

    @property
    def uri(self):
        port = self.context.request_interfaces[0].token_interface.message_interface._local_port()
        return f"coap://127.0.0.1:{port}/fw/image.bin"


async def write_uri(server, uri: str):
    r = await server.write("/5/0/1", uri.encode(), TEXT)
    assert r.code == "2.04", r


async def test_coap_pull_with_block2_and_resume_after_an_error(tmp_path, server, start_daemon):
    image = package(300 * 1024 + 11, version="4.2")
    async with ImageServer(image) as src:
        src.image.fail = {100}
        d = start_daemon({"firmware": script_firmware(tmp_path, pull_retries=3)})
        await expect_event(server, d, "register", timeout=15)
        assert await value(server, "/5/0/9") == "2"  # push and pull
        await write_uri(server, src.uri)
        await wait_value(server, "/5/0/3", "2")
        assert await value(server, "/5/0/7") == "4.2"
        assert await value(server, "/5/0/1") == src.uri
        staged = tmp_path / "state" / "firmware" / "package"
        assert staged.read_bytes() == image
        # The failed block was asked for again; the blocks before it were not.
        assert src.image.requests[100] == 2
        assert src.image.requests[0] == 1 and src.image.requests[99] == 1


async def test_coap_pull_resumes_after_a_daemon_restart(tmp_path, server, start_daemon):
    image = package(400 * 1024 + 3)
    async with ImageServer(image) as src:
        src.image.slow = 0.005
        fw = script_firmware(tmp_path)
        d = start_daemon({"firmware": fw})
        await expect_event(server, d, "register", timeout=15)
        await write_uri(server, src.uri)
        await wait_for(lambda: src.image.requests.get(150), "block 150")
        d.signal(signal.SIGKILL)
        await d.wait()
        src.image.slow = 0.0
        mark = server.mark()
        d = start_daemon({"firmware": fw})
        await expect_registration(server, d, after=mark, timeout=30)
        await wait_value(server, "/5/0/3", "2")
        assert (tmp_path / "state" / "firmware" / "package").read_bytes() == image
        # Resumed at the block position: the first blocks were fetched once only.
        assert src.image.requests[0] == 1 and src.image.requests[100] == 1


async def test_pull_failures_give_results_4_7_9(tmp_path, server, start_daemon):
    d = start_daemon({"firmware": script_firmware(tmp_path, pull_retries=1)})
    await expect_event(server, d, "register", timeout=15)
    # Unsupported scheme: 9; malformed: 7.
    await write_uri(server, "ftp://127.0.0.1/fw.img")
    assert await state(server) == ("0", "9")
    await write_uri(server, "coap://")
    assert await state(server) == ("0", "7")
    async with ImageServer(package(5000)) as src:
        # Nothing at that path: 4.04 from the server, an invalid URI.
        await write_uri(server, src.uri.replace("image.bin", "missing.bin"))
        await wait_value(server, "/5/0/5", "7")
        assert await value(server, "/5/0/3") == "0"
        # The server fails the same block every time: connection lost once the retries
        # are spent.
        src.image.fail = {2}
        orig = src.image.render

        async def always_fail(request):
            src.image.fail.add(2)
            return await orig(request)

        src.image.render = always_fail
        await write_uri(server, src.uri)
        await wait_value(server, "/5/0/5", "4", timeout=60)
        assert await value(server, "/5/0/3") == "0"
        assert not (tmp_path / "state" / "firmware" / "package").exists()


class HttpImage:
    """An HTTP(S) server in a thread serving one image with Range support; the first
    response is cut after `cut_after` bytes when set."""

    def __init__(self, data: bytes, tls_dir=None):
        import http.server
        import ssl
        import threading

        outer = self
        self.data = data
        self.cut_after = None
        self.throttle = 0.0
        self.ranges: list[str | None] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/fw/image.bin":
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = 0
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                body = outer.data[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.data) - 1}/{len(outer.data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    cut, outer.cut_after = outer.cut_after, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if outer.throttle:
                    try:
                        for i in range(0, len(body), 16384):
                            self.wfile.write(body[i : i + 16384])
                            time.sleep(outer.throttle)
                    except OSError:
                        pass
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls_dir is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_dir / "server.pem", tls_dir / "server.key")
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def uri(self, path="/fw/image.bin"):
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_tls(tmp_path):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    import subprocess

    d = tmp_path / "tls"
    d.mkdir()

    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=d)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=pull-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext")
    return d


async def test_http_pull_resumes_with_range_after_a_cut(tmp_path, server, start_daemon):
    image = package(2 * 1024 * 1024 + 9, version="5.0")
    src = HttpImage(image)
    try:
        src.cut_after = 700_000
        d = start_daemon({"firmware": script_firmware(tmp_path)})
        await expect_event(server, d, "register", timeout=15)
        await write_uri(server, src.uri())
        await wait_value(server, "/5/0/3", "2")
        assert await value(server, "/5/0/7") == "5.0"
        assert (tmp_path / "state" / "firmware" / "package").read_bytes() == image
        assert src.ranges[0] is None
        assert src.ranges[1] is not None and int(src.ranges[1].split("=")[1].split("-")[0]) > 0
        # 404: invalid URI.
        await server.write("/5/0/1", b"", TEXT)
        await write_uri(server, src.uri("/fw/missing.bin"))
        await wait_value(server, "/5/0/5", "7")
    finally:
        src.close()


async def test_https_pull_checks_the_certificate(tmp_path, server, start_daemon):
    tls = make_tls(tmp_path)
    image = package(100_000)
    src = HttpImage(image, tls_dir=tls)
    try:
        # Trusted through ca_file.
        d = start_daemon({"firmware": script_firmware(tmp_path, ca_file=str(tls / "ca.pem"), pull_retries=0)})
        await expect_event(server, d, "register", timeout=15)
        await write_uri(server, src.uri())
        await wait_value(server, "/5/0/3", "2")
        assert (tmp_path / "state" / "firmware" / "package").read_bytes() == image
        d.signal(signal.SIGKILL)
        await d.wait()
        # Without it the test CA is unknown: the download fails, nothing is staged.
        (tmp_path / "state" / "firmware.json").unlink()
        mark = server.mark()
        d = start_daemon({"firmware": script_firmware(tmp_path, pull_retries=0)}, name="untrusting")
        await expect_registration(server, d, after=mark, timeout=15)
        await write_uri(server, src.uri())
        await wait_value(server, "/5/0/5", "4")
        assert await value(server, "/5/0/3") == "0"
        assert not (tmp_path / "state" / "firmware" / "package").exists()
    finally:
        src.close()


async def test_http_pull_resumes_after_a_daemon_restart(tmp_path, server, start_daemon):
    image = package(1024 * 1024 + 1)
    src = HttpImage(image)
    staged = tmp_path / "state" / "firmware" / "package"
    try:
        src.throttle = 0.01
        fw = script_firmware(tmp_path)
        d = start_daemon({"firmware": fw})
        await expect_event(server, d, "register", timeout=15)
        await write_uri(server, src.uri())
        await wait_for(lambda: staged.exists() and staged.stat().st_size > 200_000, "part of the image")
        d.signal(signal.SIGKILL)
        await d.wait()
        src.throttle = 0.0
        mark = server.mark()
        d = start_daemon({"firmware": fw})
        await expect_registration(server, d, after=mark, timeout=30)
        await wait_value(server, "/5/0/3", "2")
        assert staged.read_bytes() == image
        assert src.ranges[0] is None
        assert int(src.ranges[-1].split("=")[1].split("-")[0]) >= 200_000
    finally:
        src.close()


async def test_coaps_pull_with_the_server_accounts_psk(tmp_path, start_daemon, endpoint):
    """A coaps:// package on the host of a DTLS-PSK server account, fetched with that
    account's credentials (aiocoap's tinydtls server on both ports)."""
    from aiocoap.credentials import CredentialsMap

    from bench.dtls_server import DtlsLwM2MServer, _free_udp_port
    from test_e2e_dtls import IDENTITY, KEY, psk_config

    image = package(200 * 1024 + 7, version="6.1")
    img = Image(image)
    site = aiocoap.resource.Site()
    site.add_resource(["fw", "image.bin"], img)
    port = _free_udp_port("127.0.0.1")
    credentials = CredentialsMap()
    credentials.load_from_dict({":client": {"dtls": {"psk": KEY, "client-identity": IDENTITY}}})
    # The tinydtls transport binds the given port + 1.
    ctx = await aiocoap.Context.create_server_context(
        site, bind=("127.0.0.1", port - 1), transports=["tinydtls_server"], server_credentials=credentials
    )
    try:
        async with DtlsLwM2MServer(IDENTITY, KEY) as server:
            config = psk_config(tmp_path, server, endpoint, KEY)
            config["firmware"] = script_firmware(tmp_path)
            d = start_daemon(config=config)
            await expect_event(server, d, "register", timeout=30)
            assert await value(server, "/5/0/8/1") == "1"  # CoAPS offered
            await write_uri(server, f"coaps://127.0.0.1:{port}/fw/image.bin")
            await wait_value(server, "/5/0/3", "2")
            assert await value(server, "/5/0/7") == "6.1"
            assert (tmp_path / "state" / "firmware" / "package").read_bytes() == image
            assert img.requests[0] == 1
    finally:
        await ctx.shutdown()
