"""A local application owning resources through org.lwm2md.Application1 (dbus-python
with a GLib main loop, as a gateway's own program would be written).

Run as `python -m bench.app BUS_ADDRESS EVENTS_FILE`. It answers the daemon's signals:
a Write is applied (the value set back with SetValue) and answered 2.04, except the
string "refuse" (answered 4.00), "slow" (applied and answered after 2 s) and "hang"
(never answered); an Execute is answered 2.04. Every signal is appended to EVENTS_FILE as a JSON line.
"""

from __future__ import annotations

import json
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

NAME = "org.lwm2md.Daemon"
PATH = "/org/lwm2md/Daemon"
IFACE = "org.lwm2md.Application1"


def main(address: str, events: str) -> None:
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    app = dbus.Interface(bus.get_object(NAME, PATH, introspect=False), IFACE)

    def record(**event) -> None:
        with open(events, "a") as f:
            f.write(json.dumps(event) + "\n")

    def on_write(request_id, path, value):
        record(signal="Write", request_id=int(request_id), path=str(path), value=str(value))
        if value == "hang":
            return
        if value == "refuse":
            app.Answer(request_id, "4.00", signature="ts")
            return
        def apply():
            app.SetValue(path, value, signature="sv")
            app.Answer(request_id, "2.04", signature="ts")
            return False

        if value == "slow":
            GLib.timeout_add(2000, apply)
        else:
            apply()

    def on_execute(request_id, path, arguments):
        record(signal="Execute", request_id=int(request_id), path=str(path), arguments=str(arguments))
        app.Answer(request_id, "2.04", signature="ts")

    bus.add_signal_receiver(on_write, "Write", IFACE, NAME, PATH)
    bus.add_signal_receiver(on_execute, "Execute", IFACE, NAME, PATH)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
