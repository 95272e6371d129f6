"""A Debian bookworm system booted with systemd-nspawn: the package under real systemd.

The root is made once with debootstrap and kept under CACHE, keyed by suite, variant and
package list; the container runs with ``--volatile=overlay`` so nothing it does (package
installs, users, state) reaches the cached root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

SUITE = "bookworm"
VARIANT = "minbase"
# libpam-systemd provides logind, which polkitd depends on.
INCLUDE = ("systemd", "systemd-sysv", "dbus", "udev", "iproute2", "adduser", "libpam-systemd", "polkitd")
CACHE = Path(os.environ.get("LWM2MD_TEST_CACHE", "/var/cache/lwm2md-test"))

# systemd-nspawn's exit status when the container asked for a reboot.
EXIT_REBOOT = 133


class NspawnError(Exception):
    pass


def require_tools() -> None:
    """Fails (never skips) when the machine cannot run these tests."""
    missing = [t for t in ("debootstrap", "systemd-nspawn", "nsenter") if shutil.which(t) is None]
    if missing:
        raise NspawnError(
            f"missing {', '.join(missing)}: install the Debian packages debootstrap and "
            "systemd-container (.ci/run does)"
        )
    if os.geteuid() != 0:
        raise NspawnError("debootstrap and systemd-nspawn need root")


def root_path() -> Path:
    key = hashlib.sha256(f"{SUITE} {VARIANT} {','.join(INCLUDE)}".encode()).hexdigest()[:12]
    return CACHE / f"{SUITE}-root-{key}"


def ensure_root() -> Path:
    """The cached root, made with debootstrap on first use (about a minute)."""
    root = root_path()
    done = root / ".lwm2md-test-complete"
    if done.is_file():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    cmd = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(INCLUDE)}", SUITE, str(partial)]
    mirror = os.environ.get("LWM2MD_DEBIAN_MIRROR")
    if mirror:
        cmd.append(mirror)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise NspawnError(f"debootstrap failed ({proc.returncode}):\n{tail}")
    # No network configuration or services the tests do not need.
    (partial / "etc" / "hostname").write_text("lwm2md-test\n")
    (partial / ".lwm2md-test-complete").write_text(" ".join(cmd) + "\n")
    partial.rename(root)
    return root


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def _is_container_init(pid: int) -> bool:
    """PID 1 of its own PID namespace, running systemd."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) > 1 and ids[-1] == "1" and comm == "systemd"
    return False


class Container:
    """``with Container(root, binds={host_dir: "/debs"}) as c: c.run("systemctl", ...)``."""

    def __init__(self, root: Path, name: str, binds: dict[Path, str] | None = None, log: Path | None = None):
        self.root = root
        self.name = name
        self.binds = binds or {}
        self.log_path = log
        self.proc: subprocess.Popen | None = None
        self.pid1: int | None = None

    def __enter__(self) -> "Container":
        self.boot()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()

    def boot(self, timeout: float = 60.0) -> None:
        cmd = [
            "systemd-nspawn", "-D", str(self.root), "-b", "--register=no", "--keep-unit",
            "--volatile=overlay", "--console=read-only", "-M", self.name,
        ]
        for host, inside in self.binds.items():
            cmd.append(f"--bind-ro={host}:{inside}")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.pid1 is None:
            if self.proc.poll() is not None:
                raise NspawnError(f"systemd-nspawn exited with {self.proc.returncode}: {self.console()}")
            if time.monotonic() > deadline:
                raise NspawnError(f"no container init under systemd-nspawn: {self.console()}")
            # nspawn forks an intermediate child that forks the container's PID 1 and exits.
            for child in _children(self.proc.pid):
                for pid in [child] + _children(child):
                    if _is_container_init(pid):
                        self.pid1 = pid
                        break
                if self.pid1 is not None:
                    break
            else:
                time.sleep(0.05)
        # Booted far enough for systemctl once the manager answers.
        while True:
            r = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=timeout)
            if r.stdout.strip() in ("running", "degraded"):
                return
            if time.monotonic() > deadline:
                raise NspawnError(f"container did not finish booting: {r.stdout} {r.stderr}")
            time.sleep(0.2)

    def run(self, *args: str, check: bool = True, timeout: float = 60.0, input: str | None = None):
        """Runs a command inside the container (all its namespaces)."""
        if self.pid1 is None:
            raise NspawnError("container is not running")
        cmd = ["nsenter", "-t", str(self.pid1), "-a", "--", "/usr/bin/env", "-i",
               "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise NspawnError(f"{' '.join(args)} exited with {r.returncode}:\n{r.stdout}{r.stderr}")
        return r

    def write(self, path: str, text: str) -> None:
        self.run("/bin/sh", "-c", 'cat > "$1"', "sh", path, input=text)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status of systemd-nspawn once the container ended, None on timeout."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def console(self) -> str:
        if self.log_path and self.log_path.is_file():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
        return ""

    def kill(self) -> None:
        """Ends the container for sure: systemd-nspawn tears it down on SIGTERM; SIGKILL
        to its whole process group (and the container's init) if it does not."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
            return
        except subprocess.TimeoutExpired:
            pass
        for pid in (self.pid1,):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(15)


if __name__ == "__main__":
    require_tools()
    print(ensure_root())
