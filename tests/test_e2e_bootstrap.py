"""Client-initiated bootstrap against the bench bootstrap server, then registration with
the provisioned account; the provisioning survives kill -9."""

import asyncio
import signal

from aiocoap import Code

from bench.bootstrap_server import BootstrapServer, security_instance, server_instance
from bench.daemon import NotifySocket, base_config, expect_event


def provision_script(dm_uri, ssid=5, lifetime=120):
    async def script(bs, remote):
        assert (await bs.delete(remote, "/")).code == "2.02"
        # Object-level write of /0 with an instance, instance-level write of /1/0.
        assert (await bs.write(remote, "/0", security_instance(1, dm_uri, ssid))).code == "2.04"
        assert (await bs.write(remote, "/1/0", server_instance(0, ssid, lifetime))).code == "2.04"
        disc = await bs.discover(remote, "/")
        assert disc.code == "2.05", disc
        bs.discovered = disc.payload.decode()
        read = await bs.read(remote, "/1/0")
        assert read.code == "2.05", read
        assert (await bs.read(remote, "/0/1")).code == "4.01"
        assert (await bs.finish(remote)).code == "2.04"

    return script


def bootstrap_config(tmp_path, bs_uri, endpoint):
    config = base_config(tmp_path, bs_uri, endpoint)
    # The bootstrap server's account alone, as a [bootstrap] table.
    del config["server"]
    config["bootstrap"] = {"uri": bs_uri}
    return config


async def wait_for(predicate, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_bootstrap_provisions_an_account_that_survives_kill_9(server, start_daemon, tmp_path, endpoint):
    async with BootstrapServer(provision_script(server.uri)) as bs:
        config = bootstrap_config(tmp_path, bs.uri, endpoint)
        daemon = start_daemon(config=config)
        reg = await expect_event(server, daemon, "register", timeout=30)
        assert not bs.errors, bs.errors
        assert [r.endpoint for r in bs.requests] == [endpoint]
        assert bs.requests[0].query["pct"] == "11542"
        assert reg.query["ep"] == endpoint and reg.query["lt"] == "120"
        assert 'lwm2m="1.1"' in bs.discovered
        assert f'</0/1>;ssid=5;uri="{server.uri}"' in bs.discovered
        # The Security object stays closed to the LwM2M server.
        assert (await server.read("/0")).code == "4.01"
        assert (await server.read("/1/0/0")).payload == b"5"
        state = tmp_path / "state" / "provisioning"
        await wait_for(state.exists)
        assert state.stat().st_mode & 0o777 == 0o600
        assert state.read_bytes().startswith(b"lwm2md provisioning 1\n")

        daemon.signal(signal.SIGKILL)
        await daemon.wait()
        mark = server.mark()
        again = start_daemon(config=config, name="restarted")
        # The registration lives on (kept in the state directory): an Update, not a
        # Register, from the saved accounts.
        upd = await expect_event(server, again, "update", after=mark, timeout=30)
        assert upd.location == reg.location and upd.response_code == "2.04"
        assert upd.query["lt"] == "120"
        assert not [e for e in server.events[mark:] if e.kind == "register"]
        # The bootstrap server heard nothing new.
        assert len(bs.requests) == 1


async def test_corrupt_provisioning_is_moved_aside_and_bootstrap_runs(server, start_daemon, tmp_path, endpoint):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "provisioning").write_bytes(b"lwm2md provisioning 1\n\xff\x00garbage")
    async with BootstrapServer(provision_script(server.uri)) as bs:
        daemon = start_daemon(config=bootstrap_config(tmp_path, bs.uri, endpoint))
        await expect_event(server, daemon, "register", timeout=30)
        assert len(bs.requests) == 1
        assert (state / "provisioning.corrupt").read_bytes().endswith(b"garbage")
        assert "is unusable" in daemon.log()


async def test_finish_without_a_server_account_is_refused(server, start_daemon, tmp_path, endpoint):
    results = []

    async def script(bs, remote):
        await bs.delete(remote, "/")
        # A Security instance whose Server instance never comes.
        await bs.write(remote, "/0", security_instance(1, server.uri, 9))
        fin = await bs.finish(remote)
        results.append(fin)

    notify = NotifySocket(tmp_path / "notify.sock")
    async with BootstrapServer(script) as bs:
        daemon = start_daemon(
            config=bootstrap_config(tmp_path, bs.uri, endpoint), env={"NOTIFY_SOCKET": str(notify.path)}
        )
        await notify.wait_for(lambda line: line == "STATUS=bootstrapping", daemon)
        await asyncio.wait_for(bs.finished.wait(), 30)
        assert results[0].code == "4.06"
        assert b"no usable LwM2M server account" in results[0].payload
        assert daemon.alive()
        assert not (tmp_path / "state" / "provisioning").exists()
    notify.close()


async def test_bootstrap_request_trigger_reprovisions(server, start_daemon, tmp_path, endpoint):
    async with BootstrapServer(provision_script(server.uri)) as bs:
        daemon = start_daemon(config=bootstrap_config(tmp_path, bs.uri, endpoint))
        await expect_event(server, daemon, "register", timeout=30)
        mark = server.mark()
        assert (await server.execute("/1/0/9")).code == "2.04"
        await expect_event(server, daemon, "register", after=mark, timeout=30)
        assert len(bs.requests) == 2


async def test_provisioned_access_control_is_enforced(server, start_daemon, tmp_path, endpoint):
    from bench import tlv
    from bench.server import LwM2MServer

    async with LwM2MServer() as second:
        async def script(bs, remote):
            assert (await bs.delete(remote, "/")).code == "2.02"
            accounts = security_instance(1, server.uri, 5) + security_instance(2, second.uri, 6)
            assert (await bs.write(remote, "/0", accounts)).code == "2.04"
            servers = server_instance(0, 5, 300) + server_instance(1, 6, 300)
            assert (await bs.write(remote, "/1", servers)).code == "2.04"
            # /3/0 belongs to server 5; server 6 may only read it.
            acl = tlv.object_instance(0, [
                tlv.resource(0, tlv.enc_int(3)),
                tlv.resource(1, tlv.enc_int(0)),
                tlv.multiple_resource(2, {6: tlv.enc_int(1)}),
                tlv.resource(3, tlv.enc_int(5)),
            ])
            assert (await bs.write(remote, "/2", acl)).code == "2.04"
            read = await bs.read(remote, "/2/0")
            assert read.code == "2.05"
            assert tlv.decode(read.payload, "/2/0")["/2/0/3"] == tlv.enc_int(5)
            assert (await bs.finish(remote)).code == "2.04"

        async with BootstrapServer(script) as bs:
            daemon = start_daemon(config=bootstrap_config(tmp_path, bs.uri, endpoint))
            await expect_event(server, daemon, "register", timeout=30)
            await expect_event(second, daemon, "register", timeout=30)
            assert not bs.errors, bs.errors
            assert (await second.read("/3/0/16")).code == "2.05"
            assert (await second.execute("/3/0/4")).code == "4.01"
            assert (await second.write("/2/0/2/6", b"31", 0)).code == "4.01"
            assert (await server.execute("/3/0/4")).code == "2.04"


async def test_kill_9_during_bootstrap_leaves_no_or_complete_provisioning(server, start_daemon, tmp_path, endpoint):
    import random

    from bench import senml

    rng = random.Random(20261125)
    header = b"lwm2md provisioning 1\n"
    state = tmp_path / "state" / "provisioning"
    async with BootstrapServer(provision_script(server.uri)) as bs:
        config = bootstrap_config(tmp_path, bs.uri, endpoint)
        for n in range(8):
            if state.exists():
                state.unlink()
            d = start_daemon(config=config, name=f"killed{n}")
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            d.signal(signal.SIGKILL)
            await d.wait()
            leftovers = [p.name for p in state.parent.iterdir() if p.name not in ("provisioning", "reporting.json")]
            assert all(name.startswith(".") for name in leftovers), leftovers
            if state.exists():
                data = state.read_bytes()
                assert data.startswith(header)
                values = senml.decode_cbor(data[len(header):])
                assert values["/0/1/0"] == server.uri
                assert values["/1/0/0"] == 5 and values["/1/0/1"] == 120
            mark = server.mark()
            again = start_daemon(config=config, name=f"restarted{n}")
            # Registered afresh, or the registration of the killed run taken up.
            reg = await expect_event(server, again, None, after=mark, timeout=30)
            assert reg.kind in ("register", "update") and reg.response_code in ("2.01", "2.04")
            assert reg.query["lt"] == "120"
            await again.stop()


async def test_bootstrap_provisions_a_psk_account_used_over_dtls(start_daemon, tmp_path, endpoint):
    from bench.dtls_server import DtlsLwM2MServer

    identity = b"provisioned-7"
    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    async with DtlsLwM2MServer(identity, key) as dtls:
        async def script(bs, remote):
            assert (await bs.delete(remote, "/")).code == "2.02"
            account = security_instance(1, dtls.uri, 7, mode=0, identity=identity, key=key)
            assert (await bs.write(remote, "/0", account)).code == "2.04"
            assert (await bs.write(remote, "/1", server_instance(0, 7, 300))).code == "2.04"
            assert (await bs.finish(remote)).code == "2.04"

        async with BootstrapServer(script) as bs:
            config = bootstrap_config(tmp_path, bs.uri, endpoint)
            daemon = start_daemon(config=config)
            await expect_event(dtls, daemon, "register", timeout=60)
            assert not bs.errors, bs.errors
            assert (await dtls.read("/3/0/16")).code == "2.05"
            # The key is persisted (mode 0600) but never logged.
            assert key in (tmp_path / "state" / "provisioning").read_bytes()
            assert key.hex() not in daemon.log().lower()
