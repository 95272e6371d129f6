"""The LwM2M 1.2 Bootstrap-Pack: with `pack = true` in `[bootstrap]` the daemon asks the
bench bootstrap server for `GET /bspack?ep=` and is provisioned by the SenML pack it
receives; a bootstrap server without packs (4.04) gets the Bootstrap-Request instead."""

import signal

from bench.bootstrap_server import BootstrapServer, SENML_CBOR, SENML_JSON, account_pack
from bench.daemon import expect_event, expect_registration
from test_e2e_bootstrap import bootstrap_config, provision_script, wait_for


def pack_config(tmp_path, bs_uri, endpoint, **changes):
    config = bootstrap_config(tmp_path, bs_uri, endpoint)
    config["bootstrap"]["pack"] = True
    config.update(changes)
    return config


async def test_a_bootstrap_pack_provisions_the_account(server, start_daemon, tmp_path, endpoint):
    pack = account_pack(1, server.uri, 9, 150)
    async with BootstrapServer(pack=pack) as bs:
        config = pack_config(tmp_path, bs.uri, endpoint)
        daemon = start_daemon(config=config)
        reg = await expect_event(server, daemon, "register", timeout=30)
        assert reg.query["ep"] == endpoint and reg.query["lt"] == "150"
        assert [(r.endpoint, r.accept) for r in bs.pack_requests] == [(endpoint, SENML_CBOR)]
        # The pack was the whole exchange: no Bootstrap-Request, no Bootstrap-Finish.
        assert bs.requests == [] and bs.exchanges == []
        assert "Bootstrap-Pack-Request" in daemon.log()
        assert (await server.read("/1/0/0")).payload == b"9"
        state = tmp_path / "state" / "provisioning"
        await wait_for(state.exists)

        # Provisioned for good: a restart registers without asking again.
        daemon.signal(signal.SIGKILL)
        await daemon.wait()
        mark = server.mark()
        again = start_daemon(config=config, name="restarted")
        reg2 = await expect_registration(server, again, after=mark, timeout=30)
        assert reg2.query["lt"] == "150"
        assert len(bs.pack_requests) == 1


async def test_a_pack_with_a_psk_account_in_senml_json(start_daemon, tmp_path, endpoint):
    from bench.dtls_server import DtlsLwM2MServer

    identity = b"packed-3"
    key = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
    async with DtlsLwM2MServer(identity, key) as dtls:
        pack = account_pack(2, dtls.uri, 3, 300, mode=0, identity=identity, key=key)
        async with BootstrapServer(pack=pack) as bs:
            config = pack_config(tmp_path, bs.uri, endpoint, content_format="senml-json")
            daemon = start_daemon(config=config)
            await expect_event(dtls, daemon, "register", timeout=60)
            assert [r.accept for r in bs.pack_requests] == [SENML_JSON]
            assert "DTLS session established" in daemon.log()
            assert key.hex() not in daemon.log().lower()


async def test_a_bootstrap_server_without_packs_gets_the_bootstrap_request(server, start_daemon, tmp_path, endpoint):
    async with BootstrapServer(provision_script(server.uri, ssid=4, lifetime=90)) as bs:
        daemon = start_daemon(config=pack_config(tmp_path, bs.uri, endpoint))
        reg = await expect_event(server, daemon, "register", timeout=30)
        assert not bs.errors, bs.errors
        assert reg.query["lt"] == "90"
        assert [r.endpoint for r in bs.pack_requests] == [endpoint]
        assert [r.endpoint for r in bs.requests] == [endpoint]
        assert bs.pack_requests[0].time <= bs.requests[0].time
        assert "falling back to the Bootstrap-Request" in daemon.log()


async def test_an_inconsistent_pack_is_refused_and_retried(server, start_daemon, tmp_path, endpoint):
    # The Server instance names another Short Server ID than the Security instance.
    pack = account_pack(1, server.uri, 9, 150)
    pack[4] = {"bn": "/1/0/", "n": "0", "v": 8}
    async with BootstrapServer(pack=pack) as bs:
        daemon = start_daemon(config=pack_config(tmp_path, bs.uri, endpoint))
        await wait_for(lambda: "Bootstrap-Pack refused" in daemon.log(), timeout=30)
        log = daemon.log()
        assert "no Server object instance with Short Server ID 9" in log
        assert "bootstrap failed; trying again in" in log
        assert server.events == []
        assert not (tmp_path / "state" / "provisioning").exists()
