"""A private dbus-daemon standing in for the system bus (DBUS_SYSTEM_BUS_ADDRESS)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


class PrivateBus:
    """dbus-daemon in the foreground (our child, so it cannot outlive the test)."""

    def __init__(self, directory: Path):
        conf = directory / "bus.conf"
        conf.write_text(BUS_CONF.format(socket=directory / "bus.sock"))
        self.daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        self.address = self.daemon.stdout.readline().decode().strip()
        assert self.address.startswith("unix:"), f"dbus-daemon printed no address: {self.address!r}"

    def wait_name(self, name: str, owner: subprocess.Popen, timeout: float = 20.0) -> None:
        """Waits until ``name`` has an owner on the bus, failing at once if ``owner``
        (the process that should take it) exits."""
        deadline = time.monotonic() + timeout
        while subprocess.run(
            ["dbus-send", f"--bus={self.address}", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.GetNameOwner", f"string:{name}"],
            capture_output=True,
        ).returncode != 0:
            assert owner.poll() is None, f"{owner.args[0]} exited with {owner.returncode} before owning {name}"
            assert time.monotonic() < deadline, f"{name} has no owner after {timeout} s"
            time.sleep(0.05)

    def close(self) -> None:
        self.daemon.terminate()
        try:
            self.daemon.wait(5)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(5)
