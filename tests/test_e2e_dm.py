"""Device management operations on objects 1 and 3 of the real lwm2md binary."""

import asyncio
from pathlib import Path

import pytest

from bench import linkformat, lwm2m_cbor, senml, tlv
from bench.daemon import expect_event
from aiocoap import Code

from bench.server import LINK, SENML_CBOR, SENML_JSON, TEXT, TLV

SERIAL = "BENCH-SERIAL-0042"


def meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == field:
            return int(rest.split()[0])
    raise KeyError(field)


def check_device(values: dict, *, serial: str | None = None):
    """values: {"/3/0/<r>[/<ri>]": python value} from any decoder."""
    for rid in (0, 1, 2, 3):
        v = values.get(f"/3/0/{rid}")
        assert isinstance(v, str) and v, f"/3/0/{rid} should be a non-empty string, got {v!r}"
    if serial is not None:
        assert values["/3/0/2"] == serial
    total = values["/3/0/21"]
    free = values["/3/0/10"]
    mem_total = meminfo_kib("MemTotal")
    assert 0.9 * mem_total <= total <= 1.1 * mem_total, (total, mem_total)
    assert 0 < free <= total
    assert "U" in values["/3/0/16"]
    assert any(k.startswith("/3/0/11/") for k in values), "error code (multiple resource) missing"
    for k, v in values.items():
        if k.startswith("/3/0/11/"):
            assert isinstance(v, int) and 0 <= v <= 32
    # Executable resources are never part of a Read.
    assert "/3/0/4" not in values and "/3/0/5" not in values


TLV_TYPES = {
    **{r: "str" for r in (0, 1, 2, 3, 14, 15, 16, 17, 18, 19)},
    **{r: "int" for r in (9, 10, 11, 13, 20, 21, 6, 7, 8)},
}


def tlv_values(raw: dict[str, bytes]) -> dict:
    out = {}
    for path, v in raw.items():
        rid = int(path.split("/")[3])
        kind = TLV_TYPES.get(rid)
        out[path] = tlv.to_str(v) if kind == "str" else tlv.to_int(v) if kind == "int" else v
    return out


async def test_read_single_resource_as_text(registered):
    server, _, _ = registered
    r = await server.read("/3/0/0")
    assert r.code == "2.05"
    assert r.content_format == TEXT
    assert r.payload.decode("utf-8")


async def test_read_device_instance_tlv(server, start_daemon):
    daemon = start_daemon({"device": {"serial": SERIAL}})
    await expect_event(server, daemon, "register")
    r = await server.read("/3/0", accept=TLV)
    assert r.code == "2.05" and r.content_format == TLV
    check_device(tlv_values(tlv.decode(r.payload, "/3/0")), serial=SERIAL)


async def test_read_device_instance_senml_json(server, start_daemon):
    daemon = start_daemon({"device": {"serial": SERIAL}})
    await expect_event(server, daemon, "register")
    r = await server.read("/3/0", accept=SENML_JSON)
    assert r.code == "2.05" and r.content_format == SENML_JSON
    check_device(senml.decode_json(r.payload), serial=SERIAL)


async def test_read_device_instance_senml_cbor(server, start_daemon):
    daemon = start_daemon({"device": {"serial": SERIAL}})
    await expect_event(server, daemon, "register")
    r = await server.read("/3/0", accept=SENML_CBOR)
    assert r.code == "2.05" and r.content_format == SENML_CBOR
    check_device(senml.decode_cbor(r.payload), serial=SERIAL)


async def test_read_device_instance_lwm2m_cbor(server, start_daemon):
    daemon = start_daemon({"device": {"serial": SERIAL}})
    await expect_event(server, daemon, "register")
    r = await server.read("/3/0", accept=11544)
    assert r.code == "2.05" and r.content_format == 11544
    check_device(lwm2m_cbor.decode(r.payload), serial=SERIAL)


async def test_read_composite_senml_json(registered):
    server, _, _ = registered
    body = b'[{"n":"/3/0/0"},{"n":"/1/0/1"},{"n":"/3/0/11"}]'
    r = await server.request(Code.FETCH, "/", payload=body, content_format=SENML_JSON)
    assert r.code == "2.05" and r.content_format == SENML_JSON
    values = senml.decode_json(r.payload)
    assert values["/1/0/1"] == 300
    assert isinstance(values["/3/0/0"], str) and values["/3/0/0"]
    assert "/3/0/11/0" in values


async def test_write_composite_senml_cbor(registered):
    server, _, _ = registered
    body = senml.encode_cbor([{"n": "/1/0/1", "v": 200}, {"n": "/3/0/15", "vs": "UTC"}])
    r = await server.request(Code.iPATCH, "/", payload=body, content_format=SENML_CBOR)
    assert r.code == "2.04"
    assert (await server.read("/1/0/1")).payload == b"200"


async def test_read_whole_device_object_tlv(registered):
    server, _, _ = registered
    r = await server.read("/3", accept=TLV)
    assert r.code == "2.05" and r.content_format == TLV
    assert tlv.instances(r.payload) == [0]
    check_device(tlv_values(tlv.decode(r.payload, "/3")))


@pytest.mark.parametrize(
    "preferred, cf", [("tlv", TLV), ("senml-json", SENML_JSON), ("senml-cbor", SENML_CBOR)]
)
async def test_read_without_accept_uses_preferred_format(server, start_daemon, preferred, cf):
    daemon = start_daemon({"content_format": preferred})
    await expect_event(server, daemon, "register")
    r = await server.read("/3/0")
    assert r.code == "2.05" and r.content_format == cf


async def test_read_multiple_resource_tlv(registered):
    server, _, _ = registered
    r = await server.read("/3/0/11", accept=TLV)
    assert r.code == "2.05" and r.content_format == TLV
    tree = tlv.parse(r.payload)
    assert len(tree) == 1
    assert tree[0].kind == tlv.MULTIPLE_RESOURCE and tree[0].id == 11
    assert tree[0].children and all(c.kind == tlv.RESOURCE_INSTANCE for c in tree[0].children)
    values = {k: tlv.to_int(v) for k, v in tlv.decode(r.payload, "/3/0/11").items()}
    assert values and all(k.startswith("/3/0/11/") for k in values)


async def test_read_multiple_resource_without_accept_is_hierarchical(registered):
    server, _, _ = registered
    r = await server.read("/3/0/11")
    assert r.code == "2.05"
    assert r.content_format in (TLV, SENML_JSON, SENML_CBOR)


async def test_read_server_object(registered):
    server, _, _ = registered
    r = await server.read("/1", accept=TLV)
    assert r.code == "2.05" and r.content_format == TLV
    assert tlv.instances(r.payload) == [0]
    d = tlv.decode(r.payload, "/1")
    assert tlv.to_int(d["/1/0/0"]) == 1
    assert tlv.to_int(d["/1/0/1"]) == 300
    assert tlv.to_str(d["/1/0/7"]) == "U"
    assert tlv.to_bool(d["/1/0/6"]) in (True, False)
    assert "/1/0/8" not in d


async def test_read_large_payload_blockwise(server, start_daemon):
    daemon = start_daemon({"coap": {"block_size": 64}})
    await expect_event(server, daemon, "register")
    r = await server.read("/3/0", accept=SENML_JSON)
    assert r.code == "2.05" and len(r.payload) > 64
    check_device(senml.decode_json(r.payload))


async def test_unsupported_accept_is_not_acceptable(registered):
    server, _, _ = registered
    r = await server.read("/3/0", accept=41)  # application/xml
    assert r.code == "4.06"


@pytest.mark.parametrize("path", ["/3/0/99", "/99", "/3/7", "/1/5/1"])
async def test_read_missing_is_not_found(registered, path):
    server, _, _ = registered
    r = await server.read(path)
    assert r.code == "4.04"


async def test_write_read_only_resource_is_method_not_allowed(registered):
    server, _, _ = registered
    r = await server.write("/3/0/0", b"Evil Corp", TEXT)
    assert r.code == "4.05"
    r = await server.read("/3/0/0")
    assert r.payload != b"Evil Corp"


async def test_execute_reboot_with_reboot_disabled(registered):
    server, _, _ = registered
    r = await server.execute("/3/0/4")
    assert r.code == "2.04"


async def test_execute_factory_reset_runs_command(registered, tmp_path):
    server, _, _ = registered
    marker = tmp_path / "reset-done"
    assert not marker.exists()
    r = await server.execute("/3/0/5")
    assert r.code == "2.04"
    for _ in range(500):
        if marker.exists():
            break
        await asyncio.sleep(0.02)
    assert marker.exists(), "factory reset command did not run"


async def test_execute_non_executable_is_method_not_allowed(registered):
    server, _, _ = registered
    r = await server.execute("/3/0/0")
    assert r.code == "4.05"


async def test_delete_device_instance_is_method_not_allowed(registered):
    server, _, _ = registered
    r = await server.delete("/3/0")
    assert r.code == "4.05"
    assert (await server.read("/3/0/0")).code == "2.05"


async def test_create_device_instance_is_method_not_allowed(registered):
    server, _, _ = registered
    payload = tlv.object_instance(1, [tlv.resource(14, tlv.enc_str("+01:00"))])
    r = await server.create("/3", payload, TLV)
    assert r.code == "4.05"


async def test_discover_device_instance(registered):
    server, _, _ = registered
    r = await server.discover("/3/0")
    assert r.code == "2.05" and r.content_format == LINK
    targets = linkformat.targets(linkformat.parse(r.payload))
    for path in ("/3/0/0", "/3/0/1", "/3/0/2", "/3/0/3", "/3/0/4", "/3/0/5", "/3/0/11"):
        assert f"{path}" in targets, (path, targets)
    assert "/3/0/99" not in targets
    assert all(t == "/3/0" or t.startswith("/3/0/") for t in targets)


LIFETIME_WRITES = {
    "text-put": ("/1/0/1", lambda lt: str(lt).encode(), TEXT, True),
    "tlv-put": ("/1/0/1", lambda lt: tlv.resource(1, tlv.enc_int(lt)), TLV, True),
    "tlv-partial-update": ("/1/0", lambda lt: tlv.resource(1, tlv.enc_int(lt)), TLV, False),
    "senml-json-put": ("/1/0/1", lambda lt: senml.encode_json([{"n": "/1/0/1", "v": lt}]), SENML_JSON, True),
    "senml-cbor-partial-update": (
        "/1/0",
        lambda lt: senml.encode_cbor([{"bn": "/1/0/", "n": "1", "v": lt}]),
        SENML_CBOR,
        False,
    ),
}


@pytest.mark.parametrize("how", list(LIFETIME_WRITES))
async def test_write_lifetime_in_each_format(registered, how):
    server, daemon, _ = registered
    path, encode, cf, replace = LIFETIME_WRITES[how]
    mark = server.mark()
    r = await server.write(path, encode(77), cf, replace=replace)
    assert r.code == "2.04"
    upd = await expect_event(server, daemon, "update", after=mark)
    assert upd.query.get("lt") == "77"
    r = await server.read("/1/0/1", accept=TEXT)
    assert (r.code, r.payload) == ("2.05", b"77")
    # The rest of the instance is untouched by a partial update.
    r = await server.read("/1/0/0", accept=TEXT)
    assert (r.code, r.payload) == ("2.05", b"1")


async def test_write_unsupported_content_format(registered):
    server, _, _ = registered
    r = await server.write("/1/0/1", b"<lifetime>5</lifetime>", 41)  # application/xml
    assert r.code == "4.15"
    assert (await server.read("/1/0/1", accept=TEXT)).payload == b"300"


async def test_write_malformed_value_is_bad_request(registered):
    server, _, _ = registered
    r = await server.write("/1/0/1", b"soon", TEXT)
    assert r.code == "4.00"
    r = await server.write("/1/0", b"\xc8\x01\x09", TLV, replace=False)  # TLV cut short
    assert r.code == "4.00"
    assert (await server.read("/1/0/1", accept=TEXT)).payload == b"300"


async def test_read_multiple_resource_as_text_is_not_acceptable(registered):
    server, _, _ = registered
    r = await server.read("/3/0/11", accept=TEXT)
    assert r.code == "4.06"
