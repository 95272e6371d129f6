"""An AT-modem simulator on a pseudo-terminal: the program under test opens the pty's
slave path as it would /dev/ttyUSB2; a thread answers on the master side like a
Quectel EC25, with the quirks real modules have (echo, unsolicited result codes between
and inside answers, slow answers, +CME ERROR). PSM (AT+CPSMS) and eDRX (AT+CEDRXS,
AT+CEDRXRDP) settings are kept and changed as the commands ask, and so are PDP contexts
(AT+CGDCONT), their authentication (AT+CGAUTH) and activation (AT+CGACT, AT+CGATT):
`refuse_apn` makes the network reject an APN with a +CME ERROR code, and
`keep_last_pdn` refuses to deactivate the last active context, as LTE modules do."""

from __future__ import annotations

import os
import select
import threading
import time
import tty


class AtModem:
    def __init__(self, answers: dict[str, list[str]] | None = None, echo: bool = True,
                 slow: dict[str, float] | None = None, urc_every: int | None = 3):
        self.answers = dict(DEFAULT_ANSWERS)
        self.answers.update(answers or {})
        self.echo = echo
        self.slow = slow or {}
        # An unsolicited +QIND after every this many commands (None: never).
        self.urc_every = urc_every
        self.commands: list[str] = []
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        # Held open so that the master never reads EIO while the client reopens.
        self._slave = slave
        self._stop = threading.Event()
        self._cops_format = 0
        # PSM mode, requested periodic TAU and active time (24.008 bit strings).
        self.psm = {"mode": 1, "tau": "00000110", "active": "00001111"}
        # Requested eDRX values by AcT-type, and the paging time windows the network gave.
        self.edrx = {4: "0101"}
        self.ptw = {4: "0011"}
        # PDP contexts by cid: [PDP type, APN]; authentication by cid: [protocol, user,
        # password]; the active cids; +CME ERROR codes the network answers per APN.
        self.contexts: dict[int, list[str]] = {1: ["IP", "internet.telekom"]}
        self.auth: dict[int, list] = {}
        self.active: set[int] = {1}
        self.refuse_apn: dict[str, int] = {}
        self.keep_last_pdn = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.master)
        os.close(self._slave)

    def _write(self, text: str) -> None:
        os.write(self.master, text.encode())

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 1024)
            except OSError:
                time.sleep(0.02)
                continue
            buf += data
            while b"\r" in buf:
                raw, _, buf = buf.partition(b"\r")
                command = raw.decode(errors="replace").strip()
                if command:
                    self._command(command)

    def _command(self, command: str) -> None:
        self.commands.append(command)
        if self.echo:
            self._write(command + "\r")
        if command in self.slow:
            time.sleep(self.slow[command])
        if command == "ATE0":
            self.echo = False
        if command.startswith("AT+COPS=3,"):
            self._cops_format = int(command.rsplit(",", 1)[1])
        key = f"AT+COPS?/{self._cops_format}" if command == "AT+COPS?" else command
        lines = self._power_saving(command)
        if lines is None:
            lines = self._contexts(command)
        if lines is None:
            lines = self.answers.get(key, ["ERROR"])
        self._write("".join(f"\r\n{line}\r\n" for line in lines))
        if self.urc_every and len(self.commands) % self.urc_every == 0:
            self._write('\r\n+QIND: "csq",20,99\r\n')

    def _power_saving(self, command: str) -> list[str] | None:
        """27.007 7.38 (+CPSMS), 7.40 (+CEDRXS) and 7.41 (+CEDRXRDP); None: not one of them."""
        if command in self.answers:
            return None
        if command == "AT+CPSMS?":
            p = self.psm
            return [f'+CPSMS: {p["mode"]},,,"{p["tau"]}","{p["active"]}"', "OK"]
        if command.startswith("AT+CPSMS="):
            args = [a.strip('"') for a in command.split("=", 1)[1].split(",")]
            if args[0] not in ("0", "1"):
                return ["+CME ERROR: 50"]
            self.psm["mode"] = int(args[0])
            for i, name in ((3, "tau"), (4, "active")):
                if len(args) > i and args[i]:
                    if len(args[i]) != 8 or set(args[i]) - {"0", "1"}:
                        return ["+CME ERROR: 50"]
                    self.psm[name] = args[i]
            return ["OK"]
        if command == "AT+CEDRXS?":
            return [f'+CEDRXS: {act},"{value}"' for act, value in sorted(self.edrx.items())] + ["OK"]
        if command.startswith("AT+CEDRXS="):
            args = [a.strip('"') for a in command.split("=", 1)[1].split(",")]
            mode, act = int(args[0]), int(args[1])
            if mode == 0:
                self.edrx.pop(act, None)
            elif len(args) > 2 and len(args[2]) == 4:
                self.edrx[act] = args[2]
            else:
                return ["+CME ERROR: 50"]
            return ["OK"]
        if command == "AT+CEDRXRDP":
            return [
                f'+CEDRXRDP: {act},"{value}","{value}","{self.ptw.get(act, "0000")}"'
                for act, value in sorted(self.edrx.items())
            ] + ["OK"]
        return None

    def _contexts(self, command: str) -> list[str] | None:
        """27.007 10.1.1 (+CGDCONT), 10.1.31 (+CGAUTH), 10.1.9 (+CGATT), 10.1.10 (+CGACT),
        10.1.14 (+CGPADDR), 10.1.23 (+CGCONTRDP); None: not one of them."""
        if command in self.answers:
            return None
        if command == "AT+CGDCONT?":
            lines = [f'+CGDCONT: {cid},"{t}","{apn}","0.0.0.0",0,0,0,0'
                     for cid, (t, apn) in sorted(self.contexts.items())]
            # A ring in the middle of the answer, as real modules let through.
            return lines[:1] + ["RING"] + lines[1:] + ["OK"]
        if command.startswith("AT+CGDCONT="):
            args = _arguments(command)
            if not args[0].isdigit():
                return ["+CME ERROR: 50"]
            cid = int(args[0])
            if len(args) == 1:
                self.contexts.pop(cid, None)
                self.active.discard(cid)
            elif args[1] not in ("IP", "IPV6", "IPV4V6") or len(args) < 3:
                return ["+CME ERROR: 50"]
            else:
                self.contexts[cid] = [args[1], args[2]]
            return ["OK"]
        if command.startswith("AT+CGAUTH="):
            args = _arguments(command)
            if not args[0].isdigit() or int(args[0]) not in self.contexts:
                return ["+CME ERROR: 50"]
            protocol = int(args[1]) if len(args) > 1 else 0
            if protocol not in (0, 1, 2):
                return ["+CME ERROR: 50"]
            self.auth[int(args[0])] = [protocol, *args[2:4]]
            return ["OK"]
        if command.startswith("AT+CGACT="):
            args = _arguments(command)
            state, cid = int(args[0]), int(args[1])
            if cid not in self.contexts:
                return ["+CME ERROR: 143"]  # unknown PDP context
            if state == 0:
                if self.keep_last_pdn and self.active == {cid}:
                    return ["+CME ERROR: 171"]  # last PDN disconnection not allowed
                self.active.discard(cid)
                return ["OK"]
            return self._activate(cid)
        if command == "AT+CGATT=0":
            self.active.clear()
            return ["OK"]
        if command == "AT+CGATT=1":
            # Attaching on LTE brings up the default bearer of context 1.
            return self._activate(1) if 1 in self.contexts else ["OK"]
        if command == "AT+CGPADDR":
            return [f'+CGPADDR: {cid},"{self._address(cid)}"' for cid in sorted(self.active)] + ["OK"]
        if command == "AT+CGCONTRDP":
            return [
                f'+CGCONTRDP: {cid},5,"{self.contexts[cid][1]}","{self._address(cid)}.255.255.255.0",'
                f'"10.45.{11 + cid}.1","8.8.8.8","8.8.4.4"'
                for cid in sorted(self.active)
            ] + ["OK"]
        return None

    def _activate(self, cid: int) -> list[str]:
        if cid in self.active:
            return ["OK"]
        code = self.refuse_apn.get(self.contexts[cid][1])
        if code is not None:
            return [f"+CME ERROR: {code}"]
        self.active.add(cid)
        return ["OK"]

    def _address(self, cid: int) -> str:
        return f"10.45.{11 + cid}.7"


def _arguments(command: str) -> list[str]:
    """The parameters of a set command, unquoted (none of this simulator's has a comma
    inside quotes)."""
    return [a.strip('"') for a in command.split("=", 1)[1].split(",")]


DEFAULT_ANSWERS: dict[str, list[str]] = {
    "AT": ["OK"],
    "ATE0": ["OK"],
    "AT+CMEE=1": ["OK"],
    "AT+CMEE?": ["+CMEE: 1", "OK"],
    "AT+CGMI": ["Quectel", "OK"],
    "AT+CGSN": ["867698041234567", "OK"],
    "AT+CIMI": ["262011234567890", "OK"],
    "AT+CCID": ["ERROR"],
    "AT+QCCID": ["+QCCID: 89490200001234567890", "OK"],
    "AT+CREG=2": ["OK"],
    "AT+CEREG=2": ["OK"],
    "AT+C5GREG=2": ["+CME ERROR: 4"],
    "AT+C5GREG?": ["+CME ERROR: 4"],
    "AT+CSQ": ["+CSQ: 20,99", "OK"],
    "AT+CESQ": ["+CESQ: 99,99,255,255,20,50", "OK"],
    "AT+COPS=3,0": ["OK"],
    "AT+COPS=3,2": ["OK"],
    "AT+COPS?/0": ['+COPS: 0,0,"Telekom.de",7', "OK"],
    "AT+COPS?/2": ['+COPS: 0,2,"26201",7', "OK"],
    "AT+CEREG?": ['+CEREG: 1,"3193","08F381C5",7', '+CEREG: 2,1,"3193","08F381C5",7', "OK"],
    "AT+CREG?": ['+CREG: 2,1,"3193","08F381C5",7', "OK"],
    'AT+QENG="servingcell"': [
        '+QENG: "servingcell","NOCONN","LTE","FDD",262,01,8F381C5,107,1300,3,5,5,3193,-98,-13,-70,-3,0,0,21',
        "OK",
    ],
    "AT+QCSQ": ['+QCSQ: "LTE",-66,-94,142,-9', "OK"],
}


# What ModemManager 1.20 asks beyond the AT backend's commands while it probes, creates
# and enables the modem (its generic and Quectel code paths), answered as an EC25 would.
MODEMMANAGER_ANSWERS: dict[str, list[str]] = {
    "ATV1": ["OK"],
    "ATX4": ["OK"],
    "AT&C1": ["OK"],
    "ATH": ["OK"],
    "AT+GCAP": ["+GCAP: +CGSM", "OK"],
    "ATI": ["Quectel", "EC25", "Revision: EC25EFAR06A06M4G", "OK"],
    "AT+CPIN?": ["+CPIN: READY", "OK"],
    "AT+CGMM": ["EC25", "OK"],
    "AT+CGMR": ["EC25EFAR06A06M4G", "OK"],
    # 28: E-UTRAN only, 30: GERAN, UTRAN and E-UTRAN, ... : the modem does LTE.
    "AT+WS46=?": ["+WS46: (12,22,25,28,29,30,31)", "OK"],
    "AT+CFUN?": ["+CFUN: 1", "OK"],
    "AT+CFUN=1": ["OK"],
    "AT+CESQ=?": ["+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)", "OK"],
    "AT+CGDCONT=?": [
        '+CGDCONT: (1-24),"IP",,,(0-2),(0-4),(0,1),(0,1)',
        '+CGDCONT: (1-24),"IPV6",,,(0-2),(0-4),(0,1),(0,1)',
        '+CGDCONT: (1-24),"IPV4V6",,,(0-2),(0-4),(0,1),(0,1)',
        "OK",
    ],
    "AT+CEMODE?": ["+CEMODE: 2", "OK"],
    "AT+CNUM": ['+CNUM: ,"+491701234567",145', "OK"],
    "AT+CGREG=2": ["OK"],
    "AT+CGREG?": ['+CGREG: 2,1,"3193","08F381C5",7', "OK"],
}
