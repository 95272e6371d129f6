"""The operator's commands: `lwm2md status` asking a running daemon over D-Bus (a
private dbus-daemon standing in for the system bus), `lwm2md check` against the bench
servers, and the command line's exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time

import pytest

from bench.bus import PrivateBus
from bench.daemon import base_config, binary, to_toml
from bench.dtls_server import DtlsLwM2MServer

IDENTITY = b"gateway-ops"
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
CHECK_LINE = re.compile(r"^(ok|warning|error) +(\S[^:]*): (.+)$")


@pytest.fixture
def bus(tmp_path):
    b = PrivateBus(tmp_path)
    yield b
    b.close()


async def lwm2md(*args: str, bus_address: str | None = None, timeout: float = 120.0):
    """Runs the binary beside the bench server's event loop."""
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SYSTEM_BUS_ADDRESS"}
    env["DBUS_SYSTEM_BUS_ADDRESS"] = bus_address or "unix:path=/nonexistent/lwm2md-test-bus"
    return await asyncio.to_thread(
        subprocess.run, [str(binary()), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


async def status_json(bus, predicate, timeout: float = 15.0) -> dict:
    """`lwm2md status -o json` until predicate(status) holds."""
    deadline = time.monotonic() + timeout
    while True:
        proc = await lwm2md("status", "-o", "json", bus_address=bus.address)
        if proc.returncode == 0:
            status = json.loads(proc.stdout)
            if predicate(status):
                return status
        if time.monotonic() > deadline:
            raise AssertionError(f"status never matched: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
        await asyncio.sleep(0.1)


def write_config(tmp_path, config: dict, name: str = "check.toml"):
    (tmp_path / "state").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(to_toml(config))
    return path


def checks_by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def assert_report_shape(report: dict) -> None:
    assert set(report) == {"ok", "errors", "warnings", "checks"}, report
    for c in report["checks"]:
        assert set(c) - {"remedy"} == {"name", "status", "detail"}, c
        assert c["status"] in ("ok", "warning", "error"), c
        if c["status"] != "ok":
            assert c["remedy"], c
    assert report["errors"] == sum(c["status"] == "error" for c in report["checks"])
    assert report["warnings"] == sum(c["status"] == "warning" for c in report["checks"])
    assert report["ok"] == (report["errors"] == 0)


# lwm2md status


async def test_status_of_a_registered_daemon(server, bus, start_daemon, endpoint):
    before = int(time.time())
    daemon = start_daemon(env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    await server.wait_registered(timeout=15)
    first, obs = await server.observe("/3/0/10")
    assert first.code == "2.05" and obs is not None

    status = await status_json(bus, lambda s: s["servers"][0]["registered"] and s["observations"] == 1)
    assert status["endpoint"] == endpoint
    assert re.fullmatch(r"\d+\.\d+\.\d+", status["version"]), status
    [s] = status["servers"]
    assert set(s) == {"short_server_id", "uri", "registered", "last_registration", "lifetime",
                      "next_update_in", "last_error", "observations"}, s
    assert (s["short_server_id"], s["uri"], s["lifetime"], s["last_error"]) == (1, server.uri, 300, "")
    assert before <= s["last_registration"] <= int(time.time()) + 1, s
    assert 0 <= s["next_update_in"] <= 300, s
    assert s["observations"] == 1

    human = await lwm2md("status", bus_address=bus.address)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert len(lines) == 2, human.stdout
    assert endpoint in lines[0]
    assert lines[1].startswith(f"server 1 {server.uri}: registered, last registration "), lines[1]
    assert daemon.alive()


async def test_read_resource_over_dbus(server, bus, start_daemon):
    daemon = start_daemon(env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    await server.wait_registered(timeout=15)
    await daemon.wait_log("serving org.lwm2md.Daemon")

    def call(path: str):
        return subprocess.run(
            ["dbus-send", f"--bus={bus.address}", "--print-reply", "--dest=org.lwm2md.Daemon",
             "/org/lwm2md/Daemon", "org.lwm2md.Daemon1.ReadResource", f"string:{path}"],
            capture_output=True, text=True, timeout=30,
        )

    lifetime = call("/1/0/1")
    assert lifetime.returncode == 0, lifetime.stderr
    assert re.search(r"variant\s+int64 300", lifetime.stdout), lifetime.stdout
    instance = call("/1/0")
    assert instance.returncode == 0, instance.stderr
    assert '"/1/0/1"' in instance.stdout and '"/1/0/7"' in instance.stdout, instance.stdout
    missing = call("/9/0")
    assert missing.returncode != 0
    assert "org.lwm2md.Daemon1.Error.NotFound" in missing.stderr, missing.stderr
    security = call("/0/0")
    assert "org.lwm2md.Daemon1.Error.Denied" in security.stderr, security.stderr
    bad = call("/x")
    assert "org.lwm2md.Daemon1.Error.BadPath" in bad.stderr, bad.stderr


async def test_send_on_demand_over_dbus(server, bus, start_daemon):
    from bench import senml
    from bench.daemon import expect_event

    daemon = start_daemon(env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    await server.wait_registered(timeout=15)
    await daemon.wait_log("serving org.lwm2md.Daemon")

    async def send(*paths: str):
        proc = await asyncio.create_subprocess_exec(
            "dbus-send", f"--bus={bus.address}", "--print-reply", "--dest=org.lwm2md.Daemon",
            "/org/lwm2md/Daemon", "org.lwm2md.Daemon1.Send", f"array:string:{','.join(paths)}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode, out.decode(), err.decode()

    mark = server.mark()
    code, out, err = await send("/1/0/1", "/3/0/21")
    assert code == 0, err
    assert re.search(r"uint32 1", out), out
    ev = await expect_event(server, daemon, "send", after=mark, timeout=10)
    values = senml.decode_cbor(ev.payload)
    assert set(values) == {"/1/0/1", "/3/0/21"}
    assert values["/1/0/1"] == 300

    code, _, err = await send("/0/0")
    assert code != 0 and "org.lwm2md.Daemon1.Error.Denied" in err, err
    code, _, err = await send("/42/0")
    assert code != 0 and "org.lwm2md.Daemon1.Error.NotFound" in err, err


async def test_status_without_a_daemon(bus):
    proc = await lwm2md("status", bus_address=bus.address)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert "not running" in proc.stderr and proc.stdout == ""


async def test_status_without_a_bus():
    proc = await lwm2md("status", "-o", "json")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "cannot connect to the system bus" in proc.stderr and proc.stdout == ""


async def test_daemon_runs_without_a_bus(server, start_daemon):
    daemon = start_daemon(env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/lwm2md-test-bus"})
    await server.wait_registered(timeout=15)
    await daemon.wait_log("no D-Bus service (org.lwm2md.Daemon)")
    assert daemon.alive()


# lwm2md check


async def test_check_ok_against_the_bench_server(server, bus, tmp_path):
    config = base_config(tmp_path, server.uri, "bench-check")
    path = write_config(tmp_path, config)
    proc = await lwm2md("--config", str(path), "check", "-o", "json", bus_address=bus.address)
    report = json.loads(proc.stdout)
    assert_report_shape(report)
    assert proc.returncode == 0, proc.stdout
    checks = checks_by_name(report)
    for name in ("config", "state_dir", "dns server 1", "coap ping server 1", "system bus"):
        assert name in checks, report
    for name in ("config", "state_dir", "dns server 1", "coap ping server 1"):
        assert checks[name]["status"] == "ok", checks[name]
    # The private bus has neither logind nor timedated.
    assert checks["system bus"]["status"] == "warning", checks["system bus"]
    assert server.events == []  # a ping, not a registration

    human = await lwm2md("check", "--config", str(path), bus_address=bus.address)
    assert human.returncode == 0
    lines = human.stdout.splitlines()
    assert lines[-1] == f"0 error(s), {report['warnings']} warning(s)"
    results = [CHECK_LINE.match(line) for line in lines if not line.startswith(" ")][:-1]
    assert all(results), human.stdout
    assert [(m.group(1), m.group(2)) for m in results] == [(c["status"], c["name"]) for c in report["checks"]]


async def test_check_probes_the_configured_backends(server, bus, tmp_path):
    """gpsd (the real one, through gpsfake), a missing I2C bus and an absent RAUC."""
    from test_e2e_location import NMEA, free_port

    port = free_port()
    fake = subprocess.Popen(
        ["gpsfake", "-q", "-c", "0.2", "-n", "-P", str(port), str(NMEA)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        config = base_config(tmp_path, server.uri, "bench-check")
        config["location"] = {"backend": "gpsd", "address": f"127.0.0.1:{port}"}
        config["sensor"] = [{"model": "bme280", "bus": "/dev/i2c-77", "address": 0x76,
                             "interval": 60, "instance": 0},
                            # A simulated bus has no device to probe.
                            {"model": "sht3x", "bus": "sim", "address": 0x44,
                             "interval": 60, "instance": 1}]
        config["firmware"] = {"backend": "rauc"}
        path = write_config(tmp_path, config)
        deadline = time.monotonic() + 30
        while True:
            proc = await lwm2md("--config", str(path), "check", "-o", "json", bus_address=bus.address)
            checks = checks_by_name(json.loads(proc.stdout))
            if checks.get("gpsd", {}).get("status") == "ok" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert checks["gpsd"]["status"] == "ok", checks["gpsd"]
        assert checks["i2c"]["status"] == "error" and "/dev/i2c-77" in checks["i2c"]["detail"]
        assert "sim" not in checks["i2c"]["detail"], checks["i2c"]
        assert checks["rauc"]["status"] == "error", checks["rauc"]
        assert proc.returncode != 0
    finally:
        fake.terminate()
        fake.wait(10)


async def test_check_dtls_handshake(bus, tmp_path):
    async with DtlsLwM2MServer(IDENTITY, KEY) as dtls_server:
        key_file = tmp_path / "psk.key"
        key_file.write_text(KEY.hex() + "\n")
        key_file.chmod(0o600)
        config = base_config(tmp_path, dtls_server.uri, "bench-check-dtls")
        config["server"][0].update({"psk_identity": IDENTITY.decode(), "psk_key_file": str(key_file)})
        path = write_config(tmp_path, config)
        proc = await lwm2md("--config", str(path), "check", "-o", "json", bus_address=bus.address)
        report = json.loads(proc.stdout)
        assert_report_shape(report)
        checks = checks_by_name(report)
        assert checks["psk_key_file server 1"]["status"] == "ok", checks
        assert checks["dtls server 1"]["status"] == "ok", checks["dtls server 1"]
        assert "DTLS handshake with" in checks["dtls server 1"]["detail"]
        ping = checks["coap ping server 1"]
        assert ping["status"] == "ok" and "over DTLS" in ping["detail"], ping
        assert proc.returncode == 0, proc.stdout

        # The same identity with another key: the handshake fails, and says what to compare.
        key_file.write_text("ff" * 16 + "\n")
        proc = await lwm2md("--config", str(path), "check", "-o", "json", bus_address=bus.address)
        report = json.loads(proc.stdout)
        assert_report_shape(report)
        dtls = checks_by_name(report)["dtls server 1"]
        assert dtls["status"] == "error", dtls
        assert IDENTITY.decode() in dtls["remedy"], dtls
        assert "coap ping server 1" not in checks_by_name(report)
        assert proc.returncode == 1


async def test_check_unreachable_server(bus, tmp_path):
    # A port nobody listens on: the kernel answers the ping with ICMP port unreachable.
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = base_config(tmp_path, f"coap://127.0.0.1:{port}", "bench-check-down")
    config["server"].append({"uri": "coap://lwm2md-test.invalid:5683", "short_server_id": 2})
    path = write_config(tmp_path, config)
    proc = await lwm2md("--config", str(path), "check", "-o", "json", bus_address=bus.address)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    assert_report_shape(report)
    checks = checks_by_name(report)
    assert checks["config"]["status"] == "ok"
    ping = checks["coap ping server 1"]
    assert ping["status"] == "error" and str(port) in ping["remedy"], ping
    dns = checks["dns server 2"]
    assert dns["status"] == "error" and "lwm2md-test.invalid" in dns["detail"], dns

    human = await lwm2md("--config", str(path), "check", bus_address=bus.address)
    assert human.returncode == 1
    text = human.stdout
    assert re.search(r"^error +coap ping server 1: .*\n +remedy: nothing listens on UDP port", text, re.M), text


async def test_check_world_readable_key_file(bus, tmp_path):
    key_file = tmp_path / "psk.key"
    key_file.write_text(KEY.hex())
    key_file.chmod(0o644)
    config = base_config(tmp_path, "coaps://127.0.0.1:5684", "bench-check-key")
    config["server"][0].update({"psk_identity": "gw", "psk_key_file": str(key_file)})
    path = write_config(tmp_path, config)
    proc = await lwm2md("--config", str(path), "check", "-o", "json", bus_address=bus.address)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    assert_report_shape(report)
    key = checks_by_name(report)["psk_key_file server 1"]
    assert key["status"] == "error", key
    assert "644" in key["detail"] and key["remedy"] == f"chmod 600 {key_file}", key
    # The daemon refuses the same file.
    assert checks_by_name(report)["config"]["status"] == "error"


async def test_check_bad_config(bus, tmp_path):
    text = to_toml(base_config(tmp_path, "coap://127.0.0.1:5683", "bench-check-bad")).splitlines()
    index = text.index("[coap]") + 1
    text.insert(index, "ack_timeot = 2.0")
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(text) + "\n")
    proc = await lwm2md("--config", str(path), "check", "-o", "json", bus_address=bus.address)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    assert_report_shape(report)
    [config] = report["checks"]
    assert config["name"] == "config" and config["status"] == "error", config
    assert f"{path}:{index + 1}:1: " in config["detail"] and "ack_timeot" in config["detail"], config

    missing = await lwm2md("--config", str(tmp_path / "absent.toml"), "check")
    assert missing.returncode == 1
    assert missing.stdout.startswith("error    config: "), missing.stdout


# The command line


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["--config"], ["status", "-o", "xml"], ["frobnicate"], ["check", "extra"]],
)
async def test_usage_errors_exit_64(args):
    proc = await lwm2md(*args)
    assert proc.returncode == 64, (args, proc.returncode, proc.stderr)
    assert proc.stderr and proc.stdout == ""


async def test_run_is_the_default_and_config_errors_exit_78(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("bogus = 1\n")
    for args in (["--config", str(path)], ["--config", str(path), "run"], ["run", "--config", str(path)]):
        proc = await lwm2md(*args)
        assert proc.returncode == 78, (args, proc.returncode, proc.stderr)
        assert f"{path}:1:1" in proc.stderr


async def test_help_and_version():
    version = await lwm2md("--version")
    assert version.returncode == 0 and re.fullmatch(r"lwm2md \d+\.\d+\.\d+\n", version.stdout), version.stdout
    helptext = await lwm2md("--help")
    assert helptext.returncode == 0
    for word in ("run", "check", "status", "--config"):
        assert word in helptext.stdout
