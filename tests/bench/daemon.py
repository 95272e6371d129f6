"""Starting the lwm2md binary under test: configuration files, the process, sd_notify."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def binary() -> Path:
    return Path(os.environ.get("LWM2MD_BIN", REPO / "target" / "debug" / "lwm2md"))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        # A JSON string of printable text is a valid TOML basic string.
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def to_toml(config: dict) -> str:
    """Top-level scalars, then tables (dicts), then arrays of tables (lists of dicts)."""
    lines = []
    for k, v in config.items():
        if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict)):
            lines.append(f"{k} = {_toml_value(v)}")
    for k, v in config.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines.extend(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
    for k, v in config.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for table in v:
                lines.append(f"[[{k}]]")
                lines.extend(f"{kk} = {_toml_value(vv)}" for kk, vv in table.items())
    return "\n".join(lines) + "\n"


def base_config(tmp_path: Path, server_uri: str, endpoint: str) -> dict:
    return {
        "endpoint": endpoint,
        "state_dir": str(tmp_path / "state"),
        "log_level": "debug",
        "coap": {"ack_timeout": 1.0, "ack_random_factor": 1.5, "max_retransmit": 4},
        "device": {
            "reboot": "none",
            "factory_reset_command": ["/bin/sh", "-c", f"touch {tmp_path / 'reset-done'}"],
        },
        "server": [{"uri": server_uri, "short_server_id": 1, "lifetime": 300, "binding": "U"}],
    }


class Daemon:
    """One lwm2md process; stderr goes to ``log_path``, stdout beside it (``.stdout``)."""

    def __init__(self, config_path: Path, log_path: Path, env: dict[str, str] | None = None):
        self.config_path = config_path
        self.log_path = log_path
        exe = binary()
        if not exe.is_file():
            raise FileNotFoundError(f"lwm2md binary not found at {exe} (build it or set LWM2MD_BIN)")
        full_env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        full_env.setdefault("RUST_BACKTRACE", "1")
        full_env.update(env or {})
        self.stdout_path = log_path.with_suffix(".stdout")
        self._log = open(log_path, "wb")
        self._stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(
            [str(exe), "--config", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._log,
            env=full_env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    async def wait(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"lwm2md (pid {self.pid}) still running after {timeout} s")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def log(self) -> str:
        """What the daemon wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    async def wait_log(self, text: str, count: int = 1, timeout: float = 20.0) -> str:
        """The log once ``text`` is in it ``count`` times; fails at once if the daemon exits."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.alive(), f"lwm2md exited with status {self.proc.returncode}"
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged {count} times within {timeout} s")
            await asyncio.sleep(0.05)
        return self.log()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    async def stop(self) -> None:
        """Ends the process whatever it is doing (teardown).

        Async so that the bench server keeps answering (the De-register) meanwhile.
        """
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                await self.wait(10)
            except TimeoutError:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        self._stdout.close()


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            self.messages.extend(line for line in data.decode(errors="replace").split("\n") if line)

    async def wait_for(self, predicate, daemon: Daemon | None = None, timeout: float = 15.0) -> str:
        """The first line (of all received so far) for which predicate(line) holds."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            for line in self.messages:
                if predicate(line):
                    return line
            if daemon is not None and not daemon.alive():
                raise AssertionError(
                    f"lwm2md exited with status {daemon.proc.returncode}; sd_notify lines: {self.messages}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching sd_notify line within {timeout} s; got {self.messages}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.sock.close()


async def expect_event(server, daemon: Daemon, kind: str | None, after: int = 0, timeout: float = 15.0):
    """server.wait_event, failing at once (with the exit status) if the daemon dies."""
    from .server import ServerError

    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            return await server.wait_event(kind, after=after, timeout=max(0.05, min(0.5, remaining)))
        except ServerError:
            if not daemon.alive():
                raise AssertionError(
                    f"lwm2md exited with status {daemon.proc.returncode} while the server waited for {kind}"
                ) from None
            if time.monotonic() >= deadline:
                raise


async def expect_registration(server, daemon: Daemon, after: int = 0, timeout: float = 15.0):
    """The daemon registered after ``after``: a Register, or after a kill -9 the Update
    with which it takes up the registration of the killed run (kept in its state
    directory). Fails at once if the daemon dies."""
    deadline = time.monotonic() + timeout
    while True:
        for ev in server.events[after:]:
            if (ev.kind, ev.response_code) in (("register", "2.01"), ("update", "2.04")):
                return ev
        if not daemon.alive():
            raise AssertionError(f"lwm2md exited with status {daemon.proc.returncode} before registering")
        if time.monotonic() >= deadline:
            seen = [(e.kind, e.response_code) for e in server.events[after:]]
            raise AssertionError(f"no registration within {timeout} s; saw {seen}")
        await asyncio.sleep(0.05)
