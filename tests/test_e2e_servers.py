"""Several server accounts: each registers and is served on its own."""

from bench.daemon import base_config, expect_event
from bench.server import LwM2MServer


async def test_two_servers_register_and_are_served_separately(server, start_daemon, tmp_path, endpoint):
    async with LwM2MServer() as second:
        config = base_config(tmp_path, server.uri, endpoint)
        config["server"].append({"uri": second.uri, "short_server_id": 2, "lifetime": 600, "binding": "U"})
        daemon = start_daemon(config=config)
        first_reg = await expect_event(server, daemon, "register")
        second_reg = await expect_event(second, daemon, "register")
        assert first_reg.query["lt"] == "300"
        assert second_reg.query["lt"] == "600"
        # Each server reads its own Server object instance.
        r1 = await server.read("/1/0/1")
        r2 = await second.read("/1/1/1")
        assert (r1.code, r1.payload) == ("2.05", b"300")
        assert (r2.code, r2.payload) == ("2.05", b"600")
        # A lifetime write by the second server updates only its own registration.
        mark1, mark2 = server.mark(), second.mark()
        assert (await second.write("/1/1/1", b"900", 0)).code == "2.04"
        upd = await expect_event(second, daemon, "update", after=mark2)
        assert upd.query.get("lt") == "900"
        assert not [e for e in server.events[mark1:] if e.kind == "update"]


async def test_configured_servers_get_access_control_instances(server, start_daemon, tmp_path, endpoint):
    """Core TS §7.3: with more than one server, every object instance has an Access
    Control instance; the configuration's accounts get them at start, owned by the first
    server, with full rights for each."""
    from bench import senml
    from bench.server import SENML_JSON

    async with LwM2MServer() as second:
        config = base_config(tmp_path, server.uri, endpoint)
        config["server"][0]["short_server_id"] = 1
        config["server"].append({"uri": second.uri, "short_server_id": 2})
        daemon = start_daemon(config=config)
        reg = await expect_event(server, daemon, "register")
        await expect_event(second, daemon, "register")
        assert any(link.target.startswith("/2/") for link in reg.links)

        r = await second.read("/2", accept=SENML_JSON)
        assert r.code == "2.05", r
        values = senml.decode_json(r.payload)
        device = [
            name.split("/")[2]
            for name, v in values.items()
            if name.endswith("/0") and name.count("/") == 3 and v == 3
            and values.get(name[:-1] + "1") == 0
        ]
        assert len(device) == 1, values
        i = device[0]
        assert values[f"/2/{i}/3"] == 1
        assert values[f"/2/{i}/2/1"] == 15 and values[f"/2/{i}/2/2"] == 15

        assert (await second.read("/3/0/0")).code == "2.05"
        no_rights = senml.encode_json([{"bn": f"/2/{i}/2/", "n": "2", "v": 0}])
        # Only the owner changes the ACL.
        r = await second.write(f"/2/{i}/2", no_rights, SENML_JSON, replace=False)
        assert r.code == "4.01"
        r = await server.write(f"/2/{i}/2", no_rights, SENML_JSON, replace=False)
        assert r.code == "2.04"
        assert (await second.read("/3/0/0")).code == "4.01"
        assert (await server.read("/3/0/0")).code == "2.05"
