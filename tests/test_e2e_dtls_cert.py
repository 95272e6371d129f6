"""The real lwm2md binary completing DTLS 1.2 handshakes with X.509 certificates against
libcoap's CoAP server built on GnuTLS (a TLS stack independent of OpenSSL), with the
Certificate Usages of the Security object (/0/x/15). libcoap's server is a CoAP server,
not an LwM2M one: it answers the Register with an error, which is after the handshake."""

import asyncio
import shutil
import socket
import subprocess
import time

import pytest

from bench.daemon import base_config

SERVER_BIN = "coap-server-gnutls"

pytestmark = pytest.mark.skipif(shutil.which(SERVER_BIN) is None, reason=f"{SERVER_BIN} missing")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(d, name, subject, ca=None, san=None):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
    if ca is None:
        openssl("req", "-x509", "-new", "-key", f"{name}.key", "-subj", subject, "-days", "30",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-out", f"{name}.pem", cwd=d)
        return
    openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text("basicConstraints=CA:FALSE\n" + (f"subjectAltName={san}\n" if san else ""))
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "30", "-extfile", ext.name, "-out", f"{name}.pem", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    issue(d, "ca", "/CN=lwm2md test CA")
    issue(d, "other-ca", "/CN=another CA")
    issue(d, "server", "/CN=localhost", ca="ca", san="DNS:localhost,IP:127.0.0.1")
    issue(d, "client", "/CN=gateway-1", ca="ca")
    (d / "client.key").chmod(0o600)
    return d


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def coap_server(pki, tmp_path):
    """libcoap's server with its certificate, validating ours against the CA; DTLS on
    port + 1."""
    port = free_port()
    while True:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port + 1))
            break
        except OSError:
            port = free_port()
    log = open(tmp_path / "coap-server.log", "w")
    proc = subprocess.Popen(
        [SERVER_BIN, "-A", "127.0.0.1", "-p", str(port), "-v", "6",
         "-c", str(pki / "server.pem"), "-j", str(pki / "server.key"), "-C", str(pki / "ca.pem")],
        stdout=log, stderr=subprocess.STDOUT,
    )
    time.sleep(0.3)
    yield port + 1, tmp_path / "coap-server.log"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def cert_config(tmp_path, pki, port, endpoint, host="127.0.0.1", **server):
    config = base_config(tmp_path, f"coaps://{host}:{port}", endpoint)
    config["server"][0].update({
        "security": "cert",
        "certificate_file": str(pki / "client.pem"),
        "private_key_file": str(pki / "client.key"),
        **server,
    })
    return config


async def wait_for_log(daemon, texts, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not any(t in daemon.log() for t in texts):
        assert daemon.alive(), f"lwm2md exited with status {daemon.proc.returncode}"
        if time.monotonic() > deadline:
            raise AssertionError(f"none of {texts} logged within {timeout} s:\n{daemon.log()}")
        await asyncio.sleep(0.05)
    return daemon.log()


@pytest.mark.parametrize(
    "usage, pinned, host, accepted",
    [
        (3, "server.pem", "127.0.0.1", True),
        (3, "client.pem", "127.0.0.1", False),
        (2, "ca.pem", "localhost", True),
        (2, "other-ca.pem", "localhost", False),
        (1, "server.pem", "127.0.0.1", True),
        (0, "ca.pem", "127.0.0.1", True),
        (0, "other-ca.pem", "127.0.0.1", False),
        (None, None, "localhost", True),
    ],
)
async def test_certificate_usages_against_libcoap_gnutls(
    pki, coap_server, start_daemon, tmp_path, endpoint, usage, pinned, host, accepted
):
    port, server_log = coap_server
    server = {"trust_store": str(pki / "ca.pem")}
    if pinned:
        server["server_certificate_file"] = str(pki / pinned)
    if usage is not None:
        server["certificate_usage"] = usage
    daemon = start_daemon(config=cert_config(tmp_path, pki, port, endpoint, host=host, **server))
    log = await wait_for_log(daemon, ["DTLS session established", "certificate verify failed"])
    if accepted:
        assert "DTLS session established" in log, log
        assert 'cipher="ECDHE-ECDSA-' in log, log
        # Past the handshake: libcoap's server is no LwM2M server and refuses the Register.
        await wait_for_log(daemon, ["registration failed: server answered 4."])
    else:
        assert "certificate verify failed" in log, log
        assert "DTLS session established" not in log
        # The server is told why (a fatal alert) instead of waiting for our next flight.
        deadline = time.monotonic() + 10
        while "alert" not in server_log.read_text().lower():
            assert time.monotonic() < deadline, server_log.read_text()[-3000:]
            await asyncio.sleep(0.1)


async def test_the_server_refuses_a_client_certificate_from_another_ca(
    pki, coap_server, start_daemon, tmp_path, endpoint
):
    port, _ = coap_server
    issue(pki, "stranger", "/CN=stranger", ca="other-ca")
    (pki / "stranger.key").chmod(0o600)
    config = cert_config(
        tmp_path, pki, port, endpoint,
        server_certificate_file=str(pki / "server.pem"),
        certificate_file=str(pki / "stranger.pem"),
        private_key_file=str(pki / "stranger.key"),
    )
    daemon = start_daemon(config=config)
    log = await wait_for_log(daemon, ["DTLS handshake failed", "DTLS handshake timed out"])
    assert "DTLS session established" not in log


async def test_a_world_readable_private_key_is_a_config_error(pki, start_daemon, tmp_path, endpoint):
    key = tmp_path / "open.key"
    key.write_bytes((pki / "client.key").read_bytes())
    key.chmod(0o644)
    daemon = start_daemon(config=cert_config(tmp_path, pki, 5684, endpoint, private_key_file=str(key)))
    assert await daemon.wait(10) == 78
    assert "private_key_file" in daemon.log() and "chmod 600" in daemon.log()
