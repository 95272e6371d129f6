"""The real lwm2md binary registering over DTLS 1.2 with a pre-shared key.

The bench server is aiocoap's tinydtls server (a DTLS stack independent of OpenSSL),
taught by bench/dtls_server.py to send its requests over the client's session.
"""

import signal

import pytest

from bench.daemon import base_config, expect_event
from bench.dtls_server import DtlsLwM2MServer
from bench.server import TEXT, TLV

IDENTITY = b"gateway-17"
KEY = bytes.fromhex("6a5f2c0e9b1d47a38c4e1f0b2d7a9c63")


@pytest.fixture
async def dtls_server():
    async with DtlsLwM2MServer(IDENTITY, KEY) as s:
        yield s


def psk_config(tmp_path, server, endpoint, key: bytes, **server_changes):
    key_file = tmp_path / "psk.key"
    # Hex with a line break in the middle, as an operator might paste it.
    key_file.write_text(key.hex()[:16] + "\n" + key.hex()[16:] + "\n")
    key_file.chmod(0o600)
    config = base_config(tmp_path, server.uri, endpoint)
    config["server"][0].update(
        {"psk_identity": IDENTITY.decode(), "psk_key_file": str(key_file), **server_changes}
    )
    return config


async def test_registers_updates_and_deregisters_over_dtls_psk(dtls_server, start_daemon, tmp_path, endpoint):
    assert dtls_server.uri.startswith("coaps://")
    daemon = start_daemon(config=psk_config(tmp_path, dtls_server, endpoint, KEY, lifetime=4))
    reg = await dtls_server.wait_registered(timeout=15)
    assert reg.endpoint == endpoint
    assert reg.query["lt"] == "4"
    assert reg.query["b"] == "U"
    # The server saw the request come through the session of our identity.
    assert list(reg.remote.authenticated_claims) == [":client"]

    log = daemon.log()
    assert "DTLS session established" in log
    assert 'cipher="PSK-AES128-CCM8"' in log

    first = dtls_server.events.index(reg.events[0])
    upd = await expect_event(dtls_server, daemon, "update", after=first + 1, timeout=10)
    assert upd.location == reg.location and upd.response_code == "2.04"

    mark = dtls_server.mark()
    daemon.signal(signal.SIGTERM)
    ev = await expect_event(dtls_server, daemon, "deregister", after=mark, timeout=10)
    assert ev.location == reg.location
    assert await daemon.wait(10) == 0
    # One handshake did it all.
    assert daemon.log().count("DTLS session established") == 1


async def test_device_management_over_the_session(dtls_server, start_daemon, tmp_path, endpoint):
    daemon = start_daemon(config=psk_config(tmp_path, dtls_server, endpoint, KEY))
    reg = await dtls_server.wait_registered(timeout=15)
    r = await dtls_server.read("/1/0/1")
    assert r == ("2.05", TEXT, b"300")
    r = await dtls_server.read("/3/0", accept=TLV)
    assert r.code == "2.05" and r.content_format == TLV and b"lwm2md" in r.payload

    mark = dtls_server.mark()
    r = await dtls_server.write("/1/0/1", b"120", TEXT)
    assert r.code == "2.04"
    upd = await expect_event(dtls_server, daemon, "update", after=mark)
    assert upd.query.get("lt") == "120" and upd.location == reg.location
    assert daemon.log().count("DTLS session established") == 1


async def test_wrong_key_is_reported_and_retried_without_registering(dtls_server, start_daemon, tmp_path, endpoint):
    config = psk_config(tmp_path, dtls_server, endpoint, bytes(16))
    # The handshake limit follows the CoAP transmission parameters (MAX_TRANSMIT_WAIT).
    config["coap"] = {"ack_timeout": 0.4, "ack_random_factor": 1.5, "max_retransmit": 2}
    daemon = start_daemon(config=config)
    log = await daemon.wait_log("DTLS handshake timed out after the server's hello", count=2, timeout=30)
    assert "most likely holds a different PSK" in log
    assert "new handshake in 5 s" in log and "new handshake in 10 s" in log
    assert daemon.alive()
    assert dtls_server.events == []
    assert "DTLS session established" not in log


async def test_notifications_over_the_session(dtls_server, start_daemon, tmp_path, endpoint):
    daemon = start_daemon(config=psk_config(tmp_path, dtls_server, endpoint, KEY))
    await dtls_server.wait_registered(timeout=15)
    first, obs = await dtls_server.observe("/1/0/1")
    assert (first.code, first.payload) == ("2.05", b"300") and obs is not None
    assert (await dtls_server.write("/1/0/1", b"120", TEXT)).code == "2.04"
    n = await obs.next(timeout=10)
    assert (n.code, n.payload) == ("2.05", b"120")
    assert n.observe is not None and n.observe > 0
    assert daemon.log().count("DTLS session established") == 1


async def test_raw_public_keys_are_a_config_error_naming_openssl(start_daemon, tmp_path, endpoint):
    import subprocess

    config = base_config(tmp_path, "coaps://127.0.0.1:5684", endpoint)
    config["server"][0]["security"] = "rpk"
    daemon = start_daemon(config=config)
    assert await daemon.wait(10) == 78
    log = daemon.log()
    assert 'security = "rpk" is not available: raw public keys (RFC 7250)' in log
    # The system OpenSSL (the daemon links it unless built `vendored`).
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.split()
    if version[:1] == ["OpenSSL"] and version[1] < "3.2":
        assert "made against an older one" in log and f"OpenSSL {version[1]}" in log
