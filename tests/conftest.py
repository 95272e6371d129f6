import re

import pytest

from bench.daemon import Daemon, base_config, expect_event, to_toml
from bench.server import LwM2MServer


@pytest.fixture
async def server():
    async with LwM2MServer() as s:
        yield s


@pytest.fixture
def endpoint(request):
    return "bench-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:48].strip("-")


@pytest.fixture
async def start_daemon(tmp_path, server, endpoint):
    """start_daemon(config_changes=None, env=None, config=None) -> Daemon.

    config_changes is merged into the default config one level deep ("coap",
    "device" tables are updated, "server" entries updated by index).
    """
    daemons = []

    def start(config_changes=None, env=None, config=None, name="lwm2md"):
        if config is None:
            config = base_config(tmp_path, server.uri, endpoint)
            for k, v in (config_changes or {}).items():
                if k == "server":
                    for i, entry in enumerate(v):
                        config["server"][i].update(entry)
                elif isinstance(v, dict):
                    config.setdefault(k, {}).update(v)
                else:
                    config[k] = v
        # As systemd's StateDirectory= would have made it.
        (tmp_path / "state").mkdir(exist_ok=True)
        text = config if isinstance(config, str) else to_toml(config)
        config_path = tmp_path / f"{name}.toml"
        config_path.write_text(text)
        d = Daemon(config_path, tmp_path / f"{name}.log", env=env)
        daemons.append(d)
        return d

    yield start
    for d in daemons:
        await d.stop()
        for title, text in (("stderr", d.log()), ("stdout", d.stdout())):
            if text:
                print(f"--- lwm2md {title} ({d.log_path.stem}, exit {d.proc.returncode}), last 200 lines ---")
                print("\n".join(text.splitlines()[-200:]))


@pytest.fixture
async def registered(server, start_daemon):
    """A running daemon registered with the bench server: (server, daemon, registration)."""
    d = start_daemon()
    ev = await expect_event(server, d, "register", timeout=15)
    return server, d, server.registrations[ev.location]
