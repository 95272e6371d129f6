"""Send (POST /dp) on the configured schedule, end to end."""

from bench import senml
from bench.daemon import expect_event
from bench.server import SENML_CBOR


async def test_scheduled_send_reaches_the_server(server, start_daemon):
    daemon = start_daemon({"send": [{"paths": ["/3/0/10", "/3/0/21", "/1/0/1"], "interval": 1}]})
    await expect_event(server, daemon, "register")
    ev = await expect_event(server, daemon, "send", timeout=10)
    assert ev.content_format == SENML_CBOR
    values = senml.decode_cbor(ev.payload)
    assert set(values) == {"/3/0/10", "/3/0/21", "/1/0/1"}
    assert values["/1/0/1"] == 300
    assert 0 < values["/3/0/10"] <= values["/3/0/21"]
