"""The bench's own decoders, against the examples of the OMA LwM2M Core specification
and RFC 8428 / RFC 6690. No daemon needed."""

import struct

import pytest

from bench import linkformat, senml, tlv


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


# LwM2M Core, TLV example: Read of a single Device object instance (/3/0).
DEVICE_TLV = h(
    """
    C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
    C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
    C8 02 09 33 34 35 30 30 30 31 32 33
    C3 03 31 2E 30
    86 06
      41 00 01
      41 01 05
    88 07 08
      42 00 0E D8
      42 01 13 88
    87 08
      41 00 7D
      42 01 03 84
    C1 09 64
    C1 0A 0F
    83 0B
      41 00 00
    C4 0D 51 82 42 8F
    C6 0E 2B 30 32 3A 30 30
    C1 10 55
    """
)

# LwM2M Core, TLV example: Read of Access Control object /2 with instances 0 and 2.
ACL_TLV = h(
    """
    08 00 0E
      C1 00 01
      C1 01 00
      83 02 41 7F 07
      C1 03 7F
    08 02 12
      C1 00 03
      C1 01 00
      87 02 41 7F 07 61 01 36 01
      C1 03 7F
    """
)


def test_tlv_device_instance():
    d = tlv.decode(DEVICE_TLV, "/3/0")
    assert tlv.to_str(d["/3/0/0"]) == "Open Mobile Alliance"
    assert tlv.to_str(d["/3/0/1"]) == "Lightweight M2M Client"
    assert tlv.to_str(d["/3/0/2"]) == "345000123"
    assert tlv.to_str(d["/3/0/3"]) == "1.0"
    assert tlv.to_int(d["/3/0/6/0"]) == 1
    assert tlv.to_int(d["/3/0/6/1"]) == 5
    assert tlv.to_int(d["/3/0/7/0"]) == 3800
    assert tlv.to_int(d["/3/0/7/1"]) == 5000
    assert tlv.to_int(d["/3/0/8/0"]) == 125
    assert tlv.to_int(d["/3/0/8/1"]) == 900
    assert tlv.to_int(d["/3/0/9"]) == 100
    assert tlv.to_int(d["/3/0/10"]) == 15
    assert tlv.to_int(d["/3/0/11/0"]) == 0
    assert tlv.to_int(d["/3/0/13"]) == 1367491215
    assert tlv.to_str(d["/3/0/14"]) == "+02:00"
    assert tlv.to_str(d["/3/0/16"]) == "U"
    assert len(d) == 16


def test_tlv_structure_of_device_instance():
    tree = tlv.parse(DEVICE_TLV)
    assert [t.id for t in tree] == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16]
    assert tree[4].kind == tlv.MULTIPLE_RESOURCE
    assert [c.id for c in tree[4].children] == [0, 1]
    assert all(c.kind == tlv.RESOURCE_INSTANCE for c in tree[4].children)
    assert tree[0].kind == tlv.RESOURCE


def test_tlv_object_with_two_instances():
    assert tlv.instances(ACL_TLV) == [0, 2]
    d = tlv.decode(ACL_TLV, "/2")
    assert {k: tlv.to_int(v) for k, v in d.items()} == {
        "/2/0/0": 1,
        "/2/0/1": 0,
        "/2/0/2/127": 7,
        "/2/0/3": 127,
        "/2/2/0": 3,
        "/2/2/1": 0,
        "/2/2/2/127": 7,
        "/2/2/2/310": 1,
        "/2/2/3": 127,
    }


def test_tlv_paths_follow_the_request():
    # A single resource read returns a Resource TLV; a multiple resource read a
    # Multiple Resource TLV; a resource instance read a Resource Instance TLV.
    assert tlv.decode(h("C1 09 64"), "/3/0/9") == {"/3/0/9": b"\x64"}
    assert tlv.decode(h("83 0B 41 00 00"), "/3/0/11") == {"/3/0/11/0": b"\x00"}
    assert tlv.decode(h("41 00 00"), "/3/0/11/0") == {"/3/0/11/0": b"\x00"}
    with pytest.raises(tlv.TlvError):
        tlv.decode(h("08 00 03 C1 00 01"), "/")
    with pytest.raises(tlv.TlvError):
        tlv.decode(h("C1 09 64"), "/3")


def test_tlv_empty_payload_and_empty_instance():
    assert tlv.decode(b"", "/1") == {}
    assert tlv.instances(h("00 00")) == [0]
    assert tlv.decode(h("00 00"), "/5") == {}


@pytest.mark.parametrize(
    "data, why",
    [
        (h("C8"), "truncated identifier"),
        (h("C8 00"), "truncated length"),
        (h("C8 00 05 41"), "overruns"),
        (h("E0 00"), "truncated identifier"),
        (h("08 00 03 08 01 00"), "object instance not allowed inside object instance"),
        (h("83 06 C1 00 01"), "resource not allowed inside multiple resource"),
        (h("08 00 03 41 00 01"), "resource instance not allowed inside object instance"),
    ],
)
def test_tlv_rejects_malformed(data, why):
    with pytest.raises(tlv.TlvError, match=why):
        tlv.parse(data)


def test_tlv_duplicate_rejected():
    with pytest.raises(tlv.TlvError, match="duplicate"):
        tlv.decode(h("C1 09 64 C1 09 65"), "/3/0")


@pytest.mark.parametrize("n", [0, 1, 7, 8, 255, 256, 65535, 65536, 70000])
@pytest.mark.parametrize("ident", [0, 255, 256, 65535])
def test_tlv_encode_round_trip(n, ident):
    value = bytes(i % 251 for i in range(n))
    enc = tlv.resource(ident, value)
    assert tlv.decode(enc, "/9/0") == {f"/9/0/{ident}": value}
    # The shortest length form is used.
    length_type = (enc[0] >> 3) & 3
    assert length_type == (0 if n <= 7 else 1 if n <= 255 else 2 if n <= 65535 else 3)
    assert bool(enc[0] & 0x20) == (ident > 255)


def test_tlv_encode_reproduces_spec_example():
    s = tlv.enc_str
    i = tlv.enc_int
    built = b"".join(
        [
            tlv.resource(0, s("Open Mobile Alliance")),
            tlv.resource(1, s("Lightweight M2M Client")),
            tlv.resource(2, s("345000123")),
            tlv.resource(3, s("1.0")),
            tlv.multiple_resource(6, {0: i(1), 1: i(5)}),
            tlv.multiple_resource(7, {0: i(3800), 1: i(5000)}),
            tlv.multiple_resource(8, {0: i(125), 1: i(900)}),
            tlv.resource(9, i(100)),
            tlv.resource(10, i(15)),
            tlv.multiple_resource(11, {0: i(0)}),
            tlv.resource(13, i(1367491215)),
            tlv.resource(14, s("+02:00")),
            tlv.resource(16, s("U")),
        ]
    )
    assert built == DEVICE_TLV
    acl = tlv.object_instance(
        0, [tlv.resource(0, i(1)), tlv.resource(1, i(0)), tlv.multiple_resource(2, {127: i(7)}), tlv.resource(3, i(127))]
    ) + tlv.object_instance(
        2,
        [tlv.resource(0, i(3)), tlv.resource(1, i(0)), tlv.multiple_resource(2, {127: i(7), 310: i(1)}), tlv.resource(3, i(127))],
    )
    assert acl == ACL_TLV


def test_tlv_values():
    assert tlv.enc_int(127) == b"\x7f"
    assert tlv.enc_int(128) == b"\x00\x80"
    assert tlv.enc_int(-129) == b"\xff\x7f"
    assert tlv.enc_int(2**31) == b"\x00\x00\x00\x00\x80\x00\x00\x00"
    assert tlv.to_int(b"\xff\xff\xff\xff\xff\xff\xff\xff") == -1
    assert tlv.to_uint(b"\xff") == 255
    with pytest.raises(tlv.TlvError):
        tlv.to_int(b"\x00\x00\x00")
    assert tlv.to_float(struct.pack(">f", 1.5)) == 1.5
    assert tlv.to_float(tlv.enc_float(-2.25)) == -2.25
    assert tlv.to_bool(b"\x01") is True and tlv.to_bool(b"\x00") is False
    with pytest.raises(tlv.TlvError):
        tlv.to_bool(b"\x02")
    assert tlv.to_objlnk(tlv.enc_objlnk(3, 0)) == (3, 0)


# LwM2M Core, SenML JSON example: Read of /3/0.
DEVICE_SENML_JSON = b"""[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
{"n":"1","vs":"Lightweight M2M Client"},
{"n":"2","vs":"345000123"},
{"n":"3","vs":"1.0"},
{"n":"6/0","v":1},
{"n":"6/1","v":5},
{"n":"7/0","v":3800},
{"n":"7/1","v":5000},
{"n":"8/0","v":125},
{"n":"8/1","v":900},
{"n":"9","v":100},
{"n":"10","v":15},
{"n":"11/0","v":0},
{"n":"13","v":1367491215},
{"n":"14","vs":"+02:00"},
{"n":"16","vs":"U"}]"""

DEVICE_VALUES = {
    "/3/0/0": "Open Mobile Alliance",
    "/3/0/1": "Lightweight M2M Client",
    "/3/0/2": "345000123",
    "/3/0/3": "1.0",
    "/3/0/6/0": 1,
    "/3/0/6/1": 5,
    "/3/0/7/0": 3800,
    "/3/0/7/1": 5000,
    "/3/0/8/0": 125,
    "/3/0/8/1": 900,
    "/3/0/9": 100,
    "/3/0/10": 15,
    "/3/0/11/0": 0,
    "/3/0/13": 1367491215,
    "/3/0/14": "+02:00",
    "/3/0/16": "U",
}


def test_senml_json_device_example():
    assert senml.decode_json(DEVICE_SENML_JSON) == DEVICE_VALUES


def test_senml_json_rfc8428_base_name():
    # RFC 8428 5.1.2, multiple data points.
    data = b"""[
     {"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
     {"n":"current","u":"A","v":1.2}
    ]"""
    assert senml.decode_json(data) == {
        "urn:dev:ow:10e2073a01080063:voltage": 120.1,
        "urn:dev:ow:10e2073a01080063:current": 1.2,
    }


def test_senml_json_value_kinds():
    data = b"""[{"bn":"/1/0/","n":"6","vb":true},{"n":"9","vd":"AQL_"},
    {"bn":"/2/0/","n":"0","vlo":"3:0"},{"n":"1","bv":10,"v":5},{"n":"2"}]"""
    assert senml.decode_json(data) == {
        "/1/0/6": True,
        "/1/0/9": b"\x01\x02\xff",
        "/2/0/0": "3:0",
        "/2/0/1": 15,
        "/2/0/2": 10,
    }


def test_senml_cbor_hand_encoded():
    # [{-2: "/3/0/", 0: "0", 3: "Open"}, {0: "9", 2: 100}, {0: "1", 4: true}, {0: "2", 8: h'01ff'}]
    data = h(
        """
        84
          A3 21 65 2F 33 2F 30 2F  00 61 30  03 64 4F 70 65 6E
          A2 00 61 39  02 18 64
          A2 00 61 31  04 F5
          A2 00 61 32  08 42 01 FF
        """
    )
    assert senml.decode_cbor(data) == {
        "/3/0/0": "Open",
        "/3/0/9": 100,
        "/3/0/1": True,
        "/3/0/2": b"\x01\xff",
    }


def test_senml_cbor_device_example_round_trip():
    records = [
        {"bn": "/3/0/", "n": "0", "vs": "Open Mobile Alliance"},
        *[{"n": k[len("/3/0/"):], ("vs" if isinstance(v, str) else "v"): v} for k, v in list(DEVICE_VALUES.items())[1:]],
    ]
    assert senml.decode_cbor(senml.encode_cbor(records)) == DEVICE_VALUES
    assert senml.decode_json(senml.encode_json(records)) == DEVICE_VALUES
    # A float value in CBOR.
    assert senml.decode_cbor(h("81 A2 00 62 2F 78 02 F9 3E 00")) == {"/x": 1.5}


@pytest.mark.parametrize(
    "data",
    [
        b'{"n":"x","v":1}',
        b'[{"n":"x"}]',
        b'[{"n":"x","v":1,"vs":"a"}]',
        b'[{"n":"x","v":"1"}]',
        b'[{"n":"x","vb":1}]',
        b'[{"v":1}]',
        b'[{"n":"x","v":1},{"n":"x","v":2}]',
        b"[1]",
        b"not json",
    ],
)
def test_senml_json_rejects(data):
    with pytest.raises(senml.SenmlError):
        senml.decode_json(data)


@pytest.mark.parametrize("data", [h("A0"), h("81 A1 18 63 01"), h("81 A2 00 61 78 08 61 41"), h("FF")])
def test_senml_cbor_rejects(data):
    with pytest.raises(senml.SenmlError):
        senml.decode_cbor(data)


def test_link_format_rfc6690_example():
    links = linkformat.parse(
        b'</sensors/temp>;rt="temperature-c";if="sensor",\n</sensors/light>;rt="light-lux";if="sensor"'
    )
    assert links == [
        linkformat.Link("/sensors/temp", {"rt": "temperature-c", "if": "sensor"}),
        linkformat.Link("/sensors/light", {"rt": "light-lux", "if": "sensor"}),
    ]


def test_link_format_lwm2m_register_and_discover():
    reg = linkformat.by_target(linkformat.parse(b'</>;rt="oma.lwm2m";ct=11543,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>'))
    assert reg == {"/": {"rt": "oma.lwm2m", "ct": "11543"}, "/1": {"ver": "1.1"}, "/1/0": {}, "/3": {"ver": "1.1"}, "/3/0": {}}
    disc = linkformat.parse(b"</3/0>;pmin=10,</3/0/1>,</3/0/6>;dim=8,</3/0/7>;gt=50;lt=42.2,</3/0/11>")
    assert linkformat.targets(disc) == ["/3/0", "/3/0/1", "/3/0/6", "/3/0/7", "/3/0/11"]
    assert disc[2].attrs == {"dim": "8"}
    assert disc[3].attrs == {"gt": "50", "lt": "42.2"}


def test_link_format_quoting_and_flags():
    links = linkformat.parse(b'</a>;rt="x,y;z";obs, </b>;t="q\\"uote"')
    assert links[0].attrs == {"rt": "x,y;z", "obs": True}
    assert links[1].attrs == {"t": 'q"uote'}
    assert linkformat.parse(b"") == []


@pytest.mark.parametrize("data", [b"/a", b"</a", b"</a>;", b"</a> </b>", b'</a>;rt="x'])
def test_link_format_rejects(data):
    with pytest.raises(linkformat.LinkFormatError):
        linkformat.parse(data)
