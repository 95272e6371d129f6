"""The real lwm2md binary completes DTLS-PSK handshakes when datagrams of the handshake
are lost, and notices a server that does not answer.

A UDP proxy (bench/lossy_proxy.py) sits between the daemon and the bench's tinydtls
server and drops chosen datagrams; OpenSSL's retransmission timer, driven by the daemon's
loop, must resend the lost flight within the same handshake.
"""

import time

import shutil
import socket
import subprocess

import pytest

from bench.daemon import base_config
from bench.dtls_server import DtlsLwM2MServer
from bench.lossy_proxy import LossyProxy

IDENTITY = b"gateway-lossy"
KEY = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
# libcoap's server takes its key as text on the command line.
KEY_TEXT = "lwm2md-lossy-key"


@pytest.fixture
async def dtls_server():
    async with DtlsLwM2MServer(IDENTITY, KEY) as s:
        yield s


@pytest.fixture
def gnutls_server(tmp_path):
    """libcoap's CoAP server on GnuTLS with the same PSK: a DTLS stack that resends its
    last flight when the client's Finished flight comes again (RFC 6347 §4.2.4), which
    tinydtls does not. It is no LwM2M server: it refuses the Register, after the
    handshake. Yields its DTLS port."""
    if shutil.which("coap-server-gnutls") is None:
        pytest.skip("coap-server-gnutls missing")
    while True:
        port = _free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port + 1))
            break
        except OSError:
            continue
    with open(tmp_path / "coap-server.log", "w") as log:
        proc = subprocess.Popen(
            ["coap-server-gnutls", "-A", "127.0.0.1", "-p", str(port), "-v", "6", "-k", KEY_TEXT],
            stdout=log, stderr=subprocess.STDOUT,
        )
        _wait_bound(port + 1, proc)
        yield port + 1
        proc.terminate()
        proc.wait(timeout=10)


def _wait_bound(port: int, proc, timeout: float = 10.0) -> None:
    """Waits until a UDP socket is bound to 127.0.0.1:port (/proc/net/udp)."""
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/net/udp") as f:
            if any(line.split()[1] == wanted for line in f.readlines()[1:]):
                return
        assert proc.poll() is None, "coap-server-gnutls exited"
        assert time.monotonic() < deadline, f"nothing bound to UDP port {port}"
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxied_config(tmp_path, proxy, endpoint, key: bytes = KEY):
    key_file = tmp_path / "psk.key"
    key_file.write_bytes(key.hex().encode() + b"\n")
    key_file.chmod(0o600)
    config = base_config(tmp_path, f"coaps://127.0.0.1:{proxy.port}", endpoint)
    config["server"][0].update({"psk_identity": IDENTITY.decode(), "psk_key_file": str(key_file)})
    return config


def first_of(*wanted):
    """Drops the first datagram of each (direction, description) given."""

    def rule(direction, kinds, seen):
        return (direction, kinds) in wanted and seen == 0

    return rule


# The tinydtls server's flights: HelloVerifyRequest; ServerHello and ServerHelloDone in
# two datagrams; ChangeCipherSpec and Finished in two datagrams. The client's: ClientHello
# (twice, the second with the cookie); ClientKeyExchange+ChangeCipherSpec+Finished in one.
LOSSES = {
    "first_client_hello": first_of(("up", "ClientHello")),
    "hello_verify_request": first_of(("down", "HelloVerifyRequest")),
    "server_hello_flight": first_of(("down", "ServerHello"), ("down", "ServerHelloDone")),
    "client_finished_flight": first_of(("up", "ClientKeyExchange+ChangeCipherSpec+Finished")),
}

# GnuTLS's flights add a ServerKeyExchange (the identity hint). Losing the server's
# Finished needs a server that resends its last flight when the client's comes again.
GNUTLS_LOSSES = {
    "server_finished": first_of(("down", "Finished")),
    "both_directions": lambda direction, kinds, seen: (
        (direction == "up" and kinds == "ClientHello" and seen < 2)
        or (direction == "down" and kinds == "ServerKeyExchange" and seen == 0)
        or (direction == "up" and kinds.endswith("Finished") and seen == 0)
        or (direction == "down" and kinds == "Finished" and seen == 0)
    ),
}


def assert_recovered_in_one_handshake(proxy, log):
    dropped = proxy.dropped()
    assert dropped, "the rule dropped nothing: the handshake differs from what the test expects"
    for lost in dropped:
        # What was lost went through later: resent within the same handshake.
        assert proxy.delivered_later(lost), (lost, proxy.log)
    # One handshake: recovered by retransmission, not by giving up and starting over.
    assert log.count("DTLS session established") == 1, log
    assert "resumed=false" in log
    assert "new handshake in" not in log
    assert proxy.passed("up", "ApplicationData") >= 1


@pytest.mark.parametrize("loss", list(LOSSES))
async def test_handshake_completes_despite_lost_flights(loss, dtls_server, start_daemon, tmp_path, endpoint):
    async with LossyProxy(("127.0.0.1", dtls_server.port), LOSSES[loss]) as proxy:
        daemon = start_daemon(config=proxied_config(tmp_path, proxy, endpoint))
        reg = await dtls_server.wait_registered(timeout=60)
        assert reg.endpoint == endpoint
        assert_recovered_in_one_handshake(proxy, daemon.log())


@pytest.mark.parametrize("loss", list(GNUTLS_LOSSES))
async def test_handshake_completes_despite_lost_flights_gnutls(
    loss, gnutls_server, start_daemon, tmp_path, endpoint
):
    async with LossyProxy(("127.0.0.1", gnutls_server), GNUTLS_LOSSES[loss]) as proxy:
        config = proxied_config(tmp_path, proxy, endpoint, KEY_TEXT.encode())
        daemon = start_daemon(config=config)
        failed = "registration failed: server answered 4."
        log = await daemon.wait_log(failed, timeout=60)
        # What follows the refused Register (a resumed handshake) is not this test's.
        assert_recovered_in_one_handshake(proxy, log[: log.index(failed)])

async def test_a_dead_server_is_noticed_and_retried_with_backoff(dtls_server, start_daemon, tmp_path, endpoint):
    dead = True

    def rule(direction, kinds, seen):
        return dead and direction == "down"

    async with LossyProxy(("127.0.0.1", dtls_server.port), rule) as proxy:
        config = proxied_config(tmp_path, proxy, endpoint)
        # The handshake limit follows the CoAP transmission parameters (MAX_TRANSMIT_WAIT).
        config["coap"] = {"ack_timeout": 0.4, "ack_random_factor": 1.5, "max_retransmit": 2}
        daemon = start_daemon(config=config)
        text = "DTLS handshake timed out: no answer from the server"
        log = await daemon.wait_log(text, count=2, timeout=60)
        assert f"{text}; new handshake in 5 s" in log
        assert f"{text}; new handshake in 10 s" in log
        # OpenSSL resent the ClientHello within each handshake before giving up.
        hellos = [p for p in proxy.log if p.direction == "up" and p.kinds == "ClientHello"]
        assert len(hellos) >= 4
        assert dtls_server.events == [] or all(e.kind != "register" for e in dtls_server.events)

        # The server comes back: the next handshake succeeds and the daemon registers.
        dead = False
        reg = await dtls_server.wait_registered(timeout=60)
        assert reg.endpoint == endpoint
        assert daemon.log().count("DTLS session established") == 1

