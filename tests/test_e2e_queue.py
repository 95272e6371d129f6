"""Queue mode (binding "UQ"): the client stops listening MAX_TRANSMIT_WAIT after its
last exchange and, when something is due, sends a Registration Update before it."""

import time

# MAX_TRANSMIT_WAIT = ack_timeout * (2 ** (max_retransmit + 1) - 1) * 1.5 = 2.1 s.
FAST = {"ack_timeout": 0.2, "max_retransmit": 2}


async def test_queue_mode_registers_with_q_and_wakes_with_an_update(server, start_daemon):
    start_daemon({"server": [{"binding": "UQ"}], "coap": FAST})
    reg = await server.wait_registered()
    assert "Q" in reg.events[0].query_raw, reg.events[0].query_raw
    assert reg.query["b"] == "U"

    assert (await server.write_attributes("/1/0/1", {"pmax": 5})).code == "2.04"
    first, obs = await server.observe("/1/0/1")
    assert first.code == "2.05" and obs is not None
    mark = server.mark()
    # Asleep after about 2 s; pmax wakes it: Update first, then the notification.
    n = await obs.next(timeout=20)
    arrived = time.monotonic()
    assert n.payload == b"300"
    update = await server.wait_event("update", after=mark, timeout=1)
    assert update.time <= arrived
    assert update.response_code == "2.04"
    obs.cancel()
