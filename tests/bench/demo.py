"""A guided run: the test bench's LwM2M server, the lwm2md daemon registering with it,
and a few device-management requests whose answers are printed.

    python -m bench.demo [--port 5683] [--keep]

With --keep the server stays up (and the daemon registered) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
from pathlib import Path

from . import senml
from .daemon import Daemon, base_config, to_toml
from .server import LwM2MServer

DEVICE_NAMES = {
    "0": "Manufacturer", "1": "Model Number", "2": "Serial Number", "3": "Firmware Version",
    "10": "Memory Free (KiB)", "11": "Error Code", "13": "Current Time", "14": "UTC Offset",
    "15": "Timezone", "16": "Supported Binding", "17": "Device Type", "18": "Hardware Version",
    "19": "Software Version", "21": "Memory Total (KiB)",
}


async def main(port: int, keep: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="lwm2md-demo-") as tmp:
        tmp_path = Path(tmp)
        async with LwM2MServer(port=port) as server:
            print(f"LwM2M server (test bench) listening on {server.uri}")
            config = base_config(tmp_path, server.uri, "lwm2md-demo")
            config["log_level"] = "info"
            (tmp_path / "state").mkdir()
            config_path = tmp_path / "lwm2md.toml"
            config_path.write_text(to_toml(config))
            daemon = Daemon(config_path, tmp_path / "lwm2md.log")
            try:
                await server.wait_registered(timeout=15)
                event = server.events[-1]
                print(f"\nRegister from {event.remote}: ep={event.query.get('ep')} lt={event.query.get('lt')} "
                      f"lwm2m={event.query.get('lwm2m')} b={event.query.get('b')}")
                print(f"  objects: {event.payload.decode()}")
                print(f"  answered 2.01, location /{event.location}")

                resp = await server.read("/3/0", accept=110)
                print(f"\nRead /3/0 (SenML JSON) -> {resp.code}")
                for name, value in sorted(senml.decode_json(resp.payload).items(), key=lambda kv: [int(x) for x in kv[0].strip('/').split('/')]):
                    parts = name.strip("/").split("/")
                    label = DEVICE_NAMES.get(parts[2], f"resource {parts[2]}")
                    if len(parts) == 4:
                        label += f" [{parts[3]}]"
                    print(f"  {name:<12} {label:<20} {value!r}")

                resp = await server.read("/1/0/1")
                print(f"\nRead /1/0/1 (lifetime, text) -> {resp.code}: {resp.payload.decode()}")
                resp = await server.discover("/3/0")
                print(f"Discover /3/0 -> {resp.code}: {resp.payload.decode()}")
                resp = await server.read("/3/0/5")
                print(f"Read /3/0/5 (an executable resource) -> {resp.code}")

                if keep:
                    print("\nThe daemon stays registered; Ctrl-C ends the demo.")
                    stop = asyncio.Event()
                    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
                    await stop.wait()

                mark = server.mark()
                daemon.signal(signal.SIGTERM)
                await server.wait_event("deregister", after=mark, timeout=10)
                code = await daemon.wait(10)
                print(f"\nSIGTERM -> De-register received, daemon exited with status {code}")
                return 0 if code == 0 else 1
            finally:
                await daemon.stop()
                log = daemon.log()
                print("\nlwm2md log:\n" + "".join(f"  {line}\n" for line in log.splitlines()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--keep", action="store_true", help="stay registered until Ctrl-C")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.port, args.keep)))
