"""python-dbusmock template: ModemManager with a connected LTE modem.

Extends dbusmock's own ``modemmanager`` template (which has Modem, Modem3gpp and SIM
properties only) with what lwm2md reads and calls: Modem.Signal (Setup), Modem.Location
(3GPP LAC/TAC/cell ID), Modem.Simple (Connect, Disconnect, GetStatus) and a Bearer with
its IP configuration and statistics. Values follow ModemManager 1.20's D-Bus API.

Load with ``python3 -m dbusmock --system -t tests/bench/mm_template.py``, then call
``org.freedesktop.DBus.Mock.AddConnectedModem`` on /org/freedesktop/ModemManager1.
``RemoveModem`` makes it disappear as an unplugged modem does. A Simple.Connect with the
APN ``reject.example`` fails as a network rejection would. ``SetGnss`` gives the modem a
GNSS receiver (Location capabilities GPS_RAW and GPS_NMEA) and the data it reports once
a client enables those sources with Location.Setup.
"""

import dbus

from dbusmock import MOCK_IFACE, OBJECT_MANAGER_IFACE, mockobject
from dbusmock.templates import modemmanager as upstream

BUS_NAME = upstream.BUS_NAME
MAIN_OBJ = upstream.MAIN_OBJ
MAIN_IFACE = upstream.MAIN_IFACE
SYSTEM_BUS = True
IS_OBJECT_MANAGER = False

MODEM_PATH = upstream.SIMPLE_MODEM_PATH
MODEM_IFACE = upstream.MODEM_IFACE
SIGNAL_IFACE = "org.freedesktop.ModemManager1.Modem.Signal"
LOCATION_IFACE = "org.freedesktop.ModemManager1.Modem.Location"
SIMPLE_IFACE = "org.freedesktop.ModemManager1.Modem.Simple"
BEARER_IFACE = "org.freedesktop.ModemManager1.Bearer"
BEARER_PATH = "/org/freedesktop/ModemManager1/Bearer/0"

LOCATION_3GPP_LAC_CI = 1
LOCATION_GPS_RAW = 1 << 1
LOCATION_GPS_NMEA = 1 << 2
LOCATION_3GPP_TEXT = "262,01,FFFE,C45A01,4E21"
ACCESS_TECHNOLOGY_LTE = 1 << 14
ALLOWED_AUTH_NONE = 1 << 0
ALLOWED_AUTH_PAP = 1 << 1
ALLOWED_AUTH_CHAP = 1 << 2


# What the GNSS receiver reports when enabled (SetGnss).
_gnss = {"nmea": "", "raw": {}}


def _location_value(modem):
    """Location's value as ModemManager builds it: one entry per enabled source with data."""
    enabled = int(modem.Get(LOCATION_IFACE, "Enabled"))
    value = {}
    if enabled & LOCATION_3GPP_LAC_CI:
        value[dbus.UInt32(LOCATION_3GPP_LAC_CI)] = dbus.String(LOCATION_3GPP_TEXT)
    if enabled & LOCATION_GPS_NMEA and _gnss["nmea"]:
        value[dbus.UInt32(LOCATION_GPS_NMEA)] = dbus.String(_gnss["nmea"])
    if enabled & LOCATION_GPS_RAW and _gnss["raw"]:
        value[dbus.UInt32(LOCATION_GPS_RAW)] = dbus.Dictionary(_gnss["raw"], signature="sv")
    return dbus.Dictionary(value, signature="uv")


def _location_setup(self, sources, signal_location):
    capabilities = int(self.Get(LOCATION_IFACE, "Capabilities"))
    if int(sources) & ~capabilities:
        raise dbus.exceptions.DBusException(
            "Cannot enable unsupported location sources",
            name="org.freedesktop.ModemManager1.Error.Core.Unsupported",
        )
    self.UpdateProperties(
        LOCATION_IFACE, {"Enabled": dbus.UInt32(sources), "SignalsLocation": dbus.Boolean(signal_location)}
    )
    self.UpdateProperties(LOCATION_IFACE, {"Location": _location_value(self)})


# The upstream template's mock methods, offered by this one too.
AddSimpleModem = upstream.AddSimpleModem
AddCbm = upstream.AddCbm


def load(mock, parameters):
    upstream.load(mock, parameters)


def _signal_props():
    nan = float("nan")
    return {
        "Rate": dbus.UInt32(0),
        "RssiThreshold": dbus.UInt32(0),
        "ErrorRateThreshold": dbus.Boolean(False),
        "Cdma": dbus.Dictionary({}, signature="sv"),
        "Evdo": dbus.Dictionary({}, signature="sv"),
        "Gsm": dbus.Dictionary({}, signature="sv"),
        "Umts": dbus.Dictionary({}, signature="sv"),
        "Lte": dbus.Dictionary(
            {
                "rssi": dbus.Double(-67.0),
                "rsrq": dbus.Double(-11.0),
                "rsrp": dbus.Double(-95.0),
                "snr": dbus.Double(7.2),
                "error-rate": dbus.Double(nan),
            },
            signature="sv",
        ),
        "Nr5g": dbus.Dictionary({}, signature="sv"),
    }


def _bearer_props(apn, user, auth):
    return {
        "Interface": dbus.String("wwan0"),
        "Connected": dbus.Boolean(True),
        "Suspended": dbus.Boolean(False),
        "Multiplexed": dbus.Boolean(False),
        "ConnectionError": dbus.Struct(("", ""), signature="ss"),
        "Ip4Config": dbus.Dictionary(
            {
                "method": dbus.UInt32(3),  # MM_BEARER_IP_METHOD_STATIC
                "address": dbus.String("10.64.12.34"),
                "prefix": dbus.UInt32(30),
                "gateway": dbus.String("10.64.12.33"),
                "dns1": dbus.String("10.74.210.210"),
                "dns2": dbus.String("10.74.210.211"),
                "mtu": dbus.UInt32(1500),
            },
            signature="sv",
        ),
        "Ip6Config": dbus.Dictionary(
            {
                "method": dbus.UInt32(3),
                "address": dbus.String("2a01:598:a1:2::1"),
                "prefix": dbus.UInt32(64),
            },
            signature="sv",
        ),
        "Stats": dbus.Dictionary(
            {
                "rx-bytes": dbus.UInt64(3_000_000),
                "tx-bytes": dbus.UInt64(1_000_000),
                "duration": dbus.UInt32(600),
            },
            signature="sv",
        ),
        "ReloadStatsSupported": dbus.Boolean(False),
        "IpTimeout": dbus.UInt32(20),
        "BearerType": dbus.UInt32(1),  # MM_BEARER_TYPE_DEFAULT
        "ProfileId": dbus.Int32(-1),
        "Properties": dbus.Dictionary(
            {
                "apn": dbus.String(apn),
                "ip-type": dbus.UInt32(3),  # IPV4 | IPV6
                "allowed-auth": dbus.UInt32(auth),
                "user": dbus.String(user),
            },
            signature="sv",
        ),
    }


def _simple_connect(self, properties):
    apn = str(properties.get("apn", ""))
    if apn == "reject.example":
        raise dbus.exceptions.DBusException(
            "Service option not subscribed",
            name="org.freedesktop.ModemManager1.Error.MobileEquipment.GprsServiceOptionNotSubscribed",
        )
    user = str(properties.get("user", ""))
    auth = int(properties.get("allowed-auth", ALLOWED_AUTH_NONE))
    bearer = mockobject.objects[BEARER_PATH]
    bearer.UpdateProperties(BEARER_IFACE, _bearer_props(apn, user, auth))
    return dbus.ObjectPath(BEARER_PATH)


def _simple_status(self):
    modem = mockobject.objects[MODEM_PATH]
    return dbus.Dictionary(
        {
            "state": modem.Get(MODEM_IFACE, "State"),
            "signal-quality": modem.Get(MODEM_IFACE, "SignalQuality"),
            "access-technologies": modem.Get(MODEM_IFACE, "AccessTechnologies"),
        },
        signature="sv",
    )


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="s")
def AddConnectedModem(self):
    """The upstream simple modem, registered on LTE with a connected bearer on
    "internet.example" (interface wwan0). Returns the modem's object path."""
    modem_path, _sim = self.AddSimpleModem()
    modem = mockobject.objects[modem_path]
    self.AddObject(BEARER_PATH, BEARER_IFACE, _bearer_props("internet.example", "", ALLOWED_AUTH_NONE), [])

    modem.UpdateProperties(MODEM_IFACE, {"State": dbus.Int32(upstream.MMModemState.STATE_CONNECTED)})
    modem.AddProperties(
        MODEM_IFACE,
        {
            "Bearers": dbus.Array([dbus.ObjectPath(BEARER_PATH)], signature="o"),
            "OwnNumbers": dbus.Array(["+491701234567"], signature="s"),
            "EquipmentIdentifier": dbus.String("356938035643809"),
        },
    )
    modem.UpdateProperties(
        upstream.MODEM_3GPP_IFACE,
        {
            "OperatorCode": dbus.String("26201"),
            "OperatorName": dbus.String("Telekom.de"),
            "Imei": dbus.String("356938035643809"),
        },
    )
    modem.AddProperties(upstream.MODEM_3GPP_IFACE, {"RegistrationState": dbus.UInt32(1)})  # home

    signal = _signal_props()
    modem.AddProperties(SIGNAL_IFACE, signal)
    modem.AddMethods(
        SIGNAL_IFACE,
        [("Setup", "u", "", "self.UpdateProperties('%s', {'Rate': dbus.UInt32(args[0])})" % SIGNAL_IFACE)],
    )

    location = {
        "Capabilities": dbus.UInt32(LOCATION_3GPP_LAC_CI),
        "SupportedAssistanceData": dbus.UInt32(0),
        "Enabled": dbus.UInt32(LOCATION_3GPP_LAC_CI),
        "SignalsLocation": dbus.Boolean(False),
        # MCC,MNC,LAC,CI,TAC; LAC, CI and TAC in hexadecimal.
        "Location": dbus.Dictionary(
            {dbus.UInt32(LOCATION_3GPP_LAC_CI): dbus.String(LOCATION_3GPP_TEXT)},
            signature="uv",
        ),
        "SuplServer": dbus.String(""),
        "AssistanceDataServers": dbus.Array([], signature="s"),
        "GpsRefreshRate": dbus.UInt32(0),
    }
    modem.AddProperties(LOCATION_IFACE, location)
    modem.AddMethods(
        LOCATION_IFACE,
        [
            ("GetLocation", "", "a{uv}", "ret = self.Get('%s', 'Location')" % LOCATION_IFACE),
            ("Setup", "ub", "", _location_setup),
        ],
    )

    # A method-only interface needs a property entry to show in GetManagedObjects.
    modem.AddProperties(SIMPLE_IFACE, {})
    modem.AddMethods(
        SIMPLE_IFACE,
        [
            ("Connect", "a{sv}", "o", _simple_connect),
            ("Disconnect", "o", "", ""),
            ("GetStatus", "", "a{sv}", _simple_status),
        ],
    )

    mockobject.objects[MAIN_OBJ].EmitSignal(
        OBJECT_MANAGER_IFACE,
        "InterfacesAdded",
        "oa{sa{sv}}",
        [dbus.ObjectPath(modem_path), {SIGNAL_IFACE: signal, LOCATION_IFACE: location, SIMPLE_IFACE: {}}],
    )
    return modem_path


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="")
def RemoveModem(self):
    """The modem is unplugged: its objects go, and InterfacesRemoved says so."""
    modem = mockobject.objects[MODEM_PATH]
    interfaces = list(modem.props.keys())
    self.RemoveObject(MODEM_PATH)
    for path in (BEARER_PATH, "/org/freedesktop/ModemManager1/SIM/2"):
        if path in mockobject.objects:
            self.RemoveObject(path)
    mockobject.objects[MAIN_OBJ].EmitSignal(
        OBJECT_MANAGER_IFACE,
        "InterfacesRemoved",
        "oas",
        [dbus.ObjectPath(MODEM_PATH), dbus.Array(interfaces, signature="s")],
    )


@dbus.service.method(MOCK_IFACE, in_signature="a{sv}", out_signature="")
def SetSignal(self, lte):
    """Replaces the LTE signal figures (rsrp, rsrq, snr, rssi)."""
    mockobject.objects[MODEM_PATH].UpdateProperties(SIGNAL_IFACE, {"Lte": dbus.Dictionary(lte, signature="sv")})


@dbus.service.method(MOCK_IFACE, in_signature="sa{sv}", out_signature="")
def SetGnss(self, nmea, raw):
    """The modem gains a GNSS receiver reporting these NMEA sentences and raw position
    (either may be empty), seen in Location once the client enables the sources."""
    _gnss["nmea"] = str(nmea)
    _gnss["raw"] = dict(raw)
    modem = mockobject.objects[MODEM_PATH]
    capabilities = int(modem.Get(LOCATION_IFACE, "Capabilities"))
    modem.UpdateProperties(
        LOCATION_IFACE,
        {"Capabilities": dbus.UInt32(capabilities | LOCATION_GPS_RAW | LOCATION_GPS_NMEA)},
    )
    modem.UpdateProperties(LOCATION_IFACE, {"Location": _location_value(modem)})
