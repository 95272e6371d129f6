"""Notifications stored while the server is unreachable survive a kill -9: the next run
takes the registration up with an Update (not a Register, which would end the
server's observations) and delivers them in order on the same observation."""

import asyncio
import json
import signal
import time

from bench.daemon import expect_event

SIM = {"model": "sim", "bus": "sim", "address": 1, "instance": 0, "interval": 1}
# MAX_TRANSMIT_WAIT = 0.2 * (2 ** 3 - 1) * 1.5 = 2.1 s: a lost Update is noticed fast.
FAST = {"ack_timeout": 0.2, "max_retransmit": 2}


class Relay(asyncio.DatagramProtocol):
    """Stands between client and server like a NAT: the server sees one address for the
    client whatever port the client uses; `up` false drops what the client sends."""

    def __init__(self, server_port: int):
        self.server = ("127.0.0.1", server_port)
        self.client = None
        self.up = True
        self.downstream = None
        self.upstream = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.downstream, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        relay = self

        class Upstream(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if relay.client is not None:
                    relay.downstream.sendto(data, relay.client)

        self.upstream, _ = await loop.create_datagram_endpoint(Upstream, remote_addr=self.server)
        return self.downstream.get_extra_info("sockname")[1]

    def datagram_received(self, data, addr):
        self.client = addr
        if self.up:
            self.upstream.sendto(data)

    def close(self):
        for t in (self.downstream, self.upstream):
            if t is not None:
                t.close()


def saved(tmp_path) -> dict:
    path = tmp_path / "state" / "reporting.json"
    return json.loads(path.read_text()) if path.exists() else {"sessions": []}


def stored_payloads(tmp_path) -> list[bytes]:
    return [
        bytes(p)
        for s in saved(tmp_path)["sessions"]
        for o in s["observations"]
        for p in o["stored"]
    ]


async def test_stored_notifications_survive_kill_9(server, start_daemon, tmp_path):
    relay = Relay(server.port)
    port = await relay.start()
    try:
        config = {
            "server": [{"uri": f"coap://127.0.0.1:{port}", "lifetime": 600}],
            "coap": FAST,
            "sensor": [SIM],
        }
        daemon = start_daemon(config)
        ev = await expect_event(server, daemon, "register", timeout=15)
        while (await server.read("/3303/0/5700")).code != "2.05":
            await asyncio.sleep(0.2)
        first, obs = await server.observe("/3303/0/5700")
        assert first.code == "2.05" and obs is not None
        await obs.next(timeout=10)

        # The uplink fails; the server asks for an Update, which gets no answer: the
        # client holds its notifications from then on and stores them.
        relay.up = False
        trigger = asyncio.ensure_future(server.execute("/1/0/8"))
        deadline = time.monotonic() + 30
        while len(stored_payloads(tmp_path)) < 3:
            assert time.monotonic() < deadline, daemon.log()[-3000:]
            await asyncio.sleep(0.2)
        daemon.signal(signal.SIGKILL)
        await daemon.wait()
        trigger.cancel()
        stored = stored_payloads(tmp_path)
        before = len(obs.notifications)
        assert saved(tmp_path)["sessions"][0]["location"] == ev.location.split("/")

        # Next run, uplink back: an Update to the same registration, then what was
        # stored, oldest first, on the server's observation.
        relay.up = True
        mark = server.mark()
        again = start_daemon(config, name="lwm2md-2")
        update = await server.wait_event("update", after=mark, timeout=20)
        assert update.location == ev.location and update.response_code == "2.04"
        assert update.query.get("lt") == "600"
        assert b"</3303/0>" in update.payload
        assert not [e for e in server.events[mark:] if e.kind == "register"]
        deadline = time.monotonic() + 20
        while len(obs.notifications) < before + len(stored):
            assert time.monotonic() < deadline, (obs.ended, again.log()[-3000:])
            await asyncio.sleep(0.1)
        delivered = [n.payload for n in obs.notifications[before : before + len(stored)]]
        assert delivered == stored
        assert "resuming the registration" in again.log()
    finally:
        relay.close()
