"""A private dbus-daemon standing in for the system bus (DBUS_SYSTEM_BUS_ADDRESS)."""

from __future__ import annotations

import subprocess
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

    def close(self) -> None:
        self.daemon.terminate()
        try:
            self.daemon.wait(5)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(5)
