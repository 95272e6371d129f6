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
