"""Small helpers shared by the test modules."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

import pytest

from phoneemu.crypto.keys import _der_len as der_len
from phoneemu.protocols import sip

T = TypeVar("T")


def run(coro: Awaitable[T], limit: float = 30.0) -> T:
    """Run ``coro`` in a fresh event loop, failing with TimeoutError after ``limit`` seconds."""
    async def wrapped() -> T:
        return await asyncio.wait_for(coro, limit)
    return asyncio.run(wrapped())


def run_within(limit: float) -> Any:
    """A ``run`` bound to ``limit`` seconds (module-level ``run = run_within(90)``)."""
    return partial(run, limit=limit)


def calls_of(fn: Callable[..., Any], *args: Any, module: str | None = None) -> list[str]:
    """The Python functions ``fn(*args)`` calls, ``fn``'s own frame not counted (issue #6's call counts):
    ``file:function`` (the file's base name) of each, or with ``module`` (a module's ``__file__``) the
    names of that module's functions alone."""
    calls: list[tuple[object, str]] = []

    def prof(frame: FrameType, event: str, _arg: object) -> None:
        code = frame.f_code
        if event == "call" and (module is None or code.co_filename == module):
            where = "" if module else f"{code.co_filename.rsplit('/', 1)[-1]}:"
            calls.append((code, where + code.co_name))

    sys.setprofile(prof)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    if calls and calls[0][0] is getattr(fn, "__code__", None):
        del calls[0]
    return [name for _, name in calls]


def copy_cluster(template: Path, tmp_path: Path) -> Any:
    """A private copy of a module-scoped lab cluster, so a test may change it freely."""
    from phoneemu.lab.cluster import LabCluster

    root = tmp_path / "lab"
    shutil.copytree(template, root)
    return LabCluster.open(root)


def lab_template(name: str, *, seed: int | None, phones: Mapping[str, Mapping[str, Any]]) -> Any:
    """A module-scoped ``template`` fixture: a seeded RSA-1024 lab cluster, made once per module in a
    temporary folder named ``name``, with ``phones`` (MAC -> ``add_phone`` options). Tests take a
    private copy with the ``cluster`` fixture (tests/conftest.py) or :func:`copy_cluster`::

        template = lab_template("labsrv", seed=11, phones={MAC: {}})

    ``seed=None``: fresh keys, for a module none of whose tests needs the same keys twice (a seeded key
    is derived from its seed in Python: a lab's took ~0.4 s of CPU, fresh ones ~0.1 s; each test worker
    makes the module's template)."""
    @pytest.fixture(scope="module")
    def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
        from phoneemu.lab.cluster import LabCluster

        root = tmp_path_factory.mktemp(name) / "lab"
        lab = LabCluster.init(root, seed=seed, key_spec="rsa1024")
        for mac, options in phones.items():
            lab.add_phone(mac, **options)
        return root
    return template


async def tls_exchange(host: str, port: int, payload: bytes, *, wait: float = 3.0) -> bytes:
    """Send ``payload`` after a TLS handshake (server certificate not checked); return what the server
    sends until it closes (what came before a reset, if it resets)."""
    from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection

    ctx = client_context_verify_after_handshake()
    reader, writer = await open_tls_connection(host, port, ctx, timeout=3)
    out = b""
    try:
        writer.write(payload)
        await writer.drain()
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), wait)
            if not chunk:
                return out
            out += chunk
    except (ConnectionError, ssl.SSLError):
        return out
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def tcp_exchange(host: str, port: int, data: bytes, *, wait: float = 3.0) -> tuple[bytes, str]:
    """Send ``data`` over TCP and read until the server's end (``wait`` s, 64 reads at most: else an
    AssertionError): (what came, how it ended: ``eof``, or ``reset`` with what came before it)."""
    reader, writer = await asyncio.open_connection(host, port)
    out = b""
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            for _ in range(64):  # bounded: each read takes at least a byte, or ends
                try:
                    chunk = await reader.read(65536)
                except ConnectionResetError:
                    return out, "reset"
                if not chunk:
                    return out, "eof"
                out += chunk
        raise AssertionError(f"no end after {len(out)} bytes")
    finally:
        writer.close()


@dataclass
class FakePhoneView:
    """A ``checks.PhoneView`` with only a boot report and an HTTPS result (unit tests of the checks)."""

    report: Any = None
    https: Any = None
    trust: bool = False  # what has_trust answers for every kind

    def has_trust(self, kind: str) -> bool:
        return self.trust

    def trust_is_empty(self, kind: str) -> bool:
        return False

    def has_lsc(self) -> bool:
        return False

    def lsc_key(self) -> str | None:
        return None

    def config_xml(self) -> bytes | None:
        return None

    @property
    def running_load(self) -> str | None:
        return None


class LinePump:
    """Read a subprocess's text stream line by line in a thread, so a test can wait (bounded) for a line
    without blocking for ever on a process that never prints it; :meth:`text` is everything read."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        """Whether a line containing ``text`` arrives within ``timeout`` seconds (False at end of stream)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done or any(text in line for line in self._lines),
                                       timeout) and any(text in line for line in self._lines)

    def text(self, timeout: float = 10.0) -> str:
        """Everything read; waits up to ``timeout`` seconds for the end of the stream first."""
        self._thread.join(timeout)
        with self._cond:
            return "".join(self._lines)


def wait_reading_stdout(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait (bounded) for ``proc`` to end while reading its stdout, which it returns; its stderr is left to
    the :class:`LinePump` reading it. Not ``proc.communicate()``: that reads stderr too, racing the pump's
    thread for the lines, so a line the pump had not read yet went to ``communicate`` and was lost to the
    test (a rare flake of tests/integration/test_lab_read_locked.py under load)."""
    assert proc.stdout is not None
    out = LinePump(proc.stdout)
    proc.wait(timeout=timeout)
    return out.text()


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it is still running, wait for it and close its pipes (a test's ``finally``)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def waits_for_flock(pid: int, path: Path) -> bool | None:
    """Whether process ``pid`` is blocked in ``flock`` on the file ``path`` (a ``->`` line of Linux's
    /proc/locks naming its pid and the file's inode); None where /proc/locks cannot be read."""
    try:
        table = Path("/proc/locks").read_text()
        inode = os.stat(path).st_ino
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields:
            waiter = fields[fields.index("->") + 1:]  # FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END
            if len(waiter) >= 5 and waiter[3] == str(pid) and waiter[4].rsplit(":", 1)[-1] == str(inode):
                return True
    return False


def still_running_after(proc: subprocess.Popen[str], seconds: float,
                        waiting: Callable[[], bool | None] = lambda: None) -> bool:
    """Whether ``proc`` is still running ``seconds`` from now — or, sooner, once ``waiting()`` is true
    (it is blocked where the test wants it: e.g. :func:`waits_for_flock`); False as soon as it exits."""
    end = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < end:
        if waiting():
            return proc.poll() is None
        time.sleep(0.02)
    return proc.poll() is None


def without_durations(value: Any) -> Any:
    """``value`` (a report's JSON form) without its ``duration_s`` entries: what two runs of the same
    decisions must agree on."""
    if isinstance(value, dict):
        return {k: without_durations(v) for k, v in value.items() if k != "duration_s"}
    if isinstance(value, list):
        return [without_durations(v) for v in value]
    return value


def one_line_cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """``phoneemu ARGV``'s one-line error, run in this process: exit 2, nothing on stdout, one stderr line
    and no traceback (a mistake in a command line is said, never a crash)."""
    from phoneemu.cli import main

    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and "Traceback" not in err, (out, err)
    return lines[0]


def cli_parsers(p: argparse.ArgumentParser,
                name: str = "phoneemu") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` of a command-line parser and every sub-command below it, depth first."""
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from cli_parsers(sub, f"{name} {sub_name}")


def _der_int(v: int) -> bytes:
    body = v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True)
    while len(body) > 1 and ((body[0] == 0 and body[1] < 0x80) or (body[0] == 0xFF and body[1] >= 0x80)):
        body = body[1:]  # minimal two's complement (DER)
    return b"\x02" + der_len(len(body)) + body


def pkcs1_private_key_pem(n: int, e: int, d: int, p: int, q: int, dmp1: int, dmq1: int, iqmp: int) -> bytes:
    """A PKCS#1 ``RSA PRIVATE KEY`` PEM of any integers, consistent or not (cryptography refuses to
    build some of them: p·q ≠ n, say), for tests of what a key loader accepts."""
    body = _der_int(0) + b"".join(_der_int(v) for v in (n, e, d, p, q, dmp1, dmq1, iqmp))
    return pem_armour("RSA PRIVATE KEY", b"\x30" + der_len(len(body)) + body)


def pem_armour(label: str, der: bytes) -> bytes:
    """``der`` as a PEM block with ``label`` (base64 in 76-character lines, which OpenSSL reads)."""
    begin, end = f"-----BEGIN {label}-----\n", f"-----END {label}-----\n"
    return begin.encode() + base64.encodebytes(der) + end.encode()


class LabFiles:
    """A lab's served files, in memory (the phone's fetcher interface): an offline boot on them."""

    def __init__(self, cluster: Any) -> None:
        self.files = dict(cluster.files())

    async def fetch(self, name: str) -> bytes:
        from phoneemu.errors import TransportError

        if name not in self.files:
            raise TransportError("file not found", kind="not-found", code=1, path=name)
        data: bytes = self.files[name]
        return data


async def boot_offline_into(fleet: Path, cluster: Any, macs: list[str], *, now: int,
                            with_mics: bool = False) -> list[Any]:
    """Boot each phone of ``macs`` once on ``cluster``'s files, offline (TVS and CAPF unreachable), into
    its own flash ``fleet/<MAC>`` (with the MIC the lab issued it when ``with_mics``); the reports."""
    from phoneemu.errors import TransportError
    from phoneemu.phone.boot import BootTarget
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import get_profile

    async def unreachable(*_a: Any, **_k: Any) -> Any:
        raise TransportError("offline", kind="unreachable")

    async def no_sleep(_s: float) -> None:
        return None

    prof = get_profile("cp-8861")
    reports = []
    for mac in macs:
        phone = Phone(mac=mac, profile=prof, flash=Flash(fleet / mac, profile=prof), clock=lambda: now,
                      mic=cluster.phone_identity(mac) if with_mics else None, tvs=unreachable,
                      capf=unreachable, sleep=no_sleep, capf_retries=0)
        reports.append(await phone.boot(BootTarget(host="lab", tftp_port=69, use_http=False),
                                        fetcher=LabFiles(cluster)))
    return reports


def boot_into_flash(cluster: Any, flash: Path, mac: str, *, profile: str = "cp-8861",
                    now: int = 1_780_000_000) -> Any:
    """Boot phone ``mac`` (a ``profile``, its clock stopped at ``now``) once on ``cluster``'s files
    (:class:`LabFiles`) into the flash folder ``flash``; the boot report. The TVS and CAPF its configs
    name are asked as they are: serve the lab first where the boot is to reach them."""
    from phoneemu.phone.boot import BootTarget
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import get_profile

    prof = get_profile(profile)
    phone = Phone(mac=mac, profile=prof, flash=Flash(flash, profile=prof), clock=lambda: now)
    return run(phone.boot(BootTarget(host="lab", tftp_port=69, use_http=False), fetcher=LabFiles(cluster)))


def _lab_servers_thread(cluster: Any, host: str, options: Mapping[str, Any], *, serve_for: float,
                        prepare: Callable[[Any], object] | None = None
                        ) -> tuple[Any, asyncio.AbstractEventLoop, Callable[[], None]]:
    """``LabServers(cluster, host=host, **options)`` on a new asyncio loop in a daemon thread, serving for
    at most ``serve_for`` s: (the running servers, their loop, ``stop()``) once they listen, ``prepare(srv)``
    run first when given. An exception before they listen (a port taken: the bind error) is raised here at
    once and the thread is ended (was: it died in the thread, and the caller waited 60 s for a start)."""
    from phoneemu.lab.servers import LabServers

    ready: dict[str, Any] = {}
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop_ev = asyncio.Event()

    async def serve() -> None:
        async with LabServers(cluster, host=host, **options) as srv:
            if prepare is not None:
                prepare(srv)
            ready["srv"] = srv
            started.set()
            await asyncio.wait_for(stop_ev.wait(), serve_for)

    def run_servers() -> None:
        """The servers' thread: an exception before they listen is kept for the caller, which ``started``
        wakes at once; one after it is the thread's own."""
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            if started.is_set():
                raise
            ready["failed"] = exc
            started.set()

    def stop() -> None:
        loop.call_soon_threadsafe(stop_ev.set)
        t.join(30)
        loop.close()

    t = threading.Thread(target=run_servers, daemon=True)
    t.start()
    assert started.wait(60), "the lab servers did not start within 60 s"
    if "failed" in ready:
        t.join(30)
        loop.close()
        raise ready["failed"]
    return ready["srv"], loop, stop


def serve_in_thread(cluster: Any, host: str = "127.0.0.1", **options: Any) -> tuple[dict[str, int], Any]:
    """``LabServers(cluster, host=host, **options)`` on its own asyncio loop in a thread, for code under
    test that runs its own loop (``asyncio.run``: the CLI); returns (ports, stop()). ``prepare(servers)``,
    when given, runs once they listen (e.g. ``set_network``). The servers serve ``cluster`` itself: with
    ``watch``, change the lab through ``main(["lab", ...])`` or another ``LabCluster``, never through
    ``cluster`` from the test's thread (a watch reload between two of its changes swaps in what it read
    before the second: the served lab is not thread-safe, the lab lock is what orders its writers).
    Servers that cannot start raise their own error at once (:func:`_lab_servers_thread`)."""
    prepare = options.pop("prepare", None)
    srv, _loop, stop = _lab_servers_thread(cluster, host, options, serve_for=120, prepare=prepare)
    return srv.ports, stop


@contextlib.contextmanager
def lab_served_in_thread(cluster: Any, host: str = "127.0.0.1",
                         **options: Any) -> Iterator[tuple[Any, Callable[[Callable[[], Any]], Any]]]:
    """:func:`serve_in_thread` for a test that runs the CLI in its own thread (``main([...])``, no
    subprocess: the test is not about the process) and changes the lab or its servers between the runs:
    yields (the running ``LabServers``, ``on_loop``). ``on_loop(fn)`` runs ``fn()`` on the servers' loop
    (awaiting its result when that is awaitable) and returns the result: ``on_loop(lambda:
    cluster.tamper(...))``, ``on_loop(lambda: srv.stop_service("sips"))`` — the servers' thread never
    sees the lab half-changed. The servers stop when the block ends; servers that cannot start raise
    their own error at once, as :func:`serve_in_thread`'s do (was: a 60 s wait, then a bare assert)."""
    import inspect

    srv, loop, stop = _lab_servers_thread(cluster, host, options, serve_for=300)
    try:
        def on_loop(fn: Callable[[], Any]) -> Any:
            async def call() -> Any:
                result = fn()
                return await result if inspect.isawaitable(result) else result
            return asyncio.run_coroutine_threadsafe(call(), loop).result(60)

        yield srv, on_loop
    finally:
        stop()


def run_passing_scenario(path: Path, text: str) -> Any:
    """Write the scenario ``text`` to ``path``, run it in process and return its result, asserting it
    passed with a check in every expectation (the report of a failure is the assertion's message)."""
    from phoneemu.scenario.loader import load_file
    from phoneemu.scenario.reports import render_text
    from phoneemu.scenario.results import Outcome, RunSummary
    from phoneemu.scenario.runner import RunOptions, run_scenario

    path.write_text(text)
    result = asyncio.run(run_scenario(load_file(path), RunOptions()))
    report = render_text(RunSummary(scenarios=[result]), verbose=True)
    assert result.outcome is Outcome.PASS, report
    assert result.expectations and all(e.checks for e in result.expectations), report
    return result


class RawSipPhone:
    """A raw SIP client over one TCP connection to the lab registrar, as phone ``mac`` (the relay and
    dial-plan tests drive the registrar with it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mac: str) -> None:
        self.reader, self.writer, self.mac = reader, writer, mac
        self.stream = sip.SipStream()
        port = writer.get_extra_info("sockname")[1]
        self.via = f"SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK{mac.lower()}"

    async def read(self, timeout: float = 2.0) -> sip.SipMessage | None:
        """The next message, None when the connection ends or nothing comes within ``timeout``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (msg := self.stream.next()) is None:
            try:
                chunk = await asyncio.wait_for(self.reader.read(4096), max(0.0, end - loop.time()))
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.stream.feed(chunk)
        return msg

    def request(self, method: str, uri: str, *, call_id: str, cseq: int, body: bytes = b"",
                to: str | None = None, extra: tuple[tuple[str, str], ...] = ()) -> None:
        headers = [("Via", self.via), ("From", f"<sip:SEP{self.mac}@127.0.0.1>;tag=t{self.mac[-2:]}"),
                   ("To", to or f"<{uri}>"), ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"),
                   ("Max-Forwards", "70"), *extra]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self.writer.write(sip.build_message(f"{method} {uri} SIP/2.0", headers, body))

    def reply(self, msg: sip.SipMessage, status: int, reason: str, *,
              extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        self.writer.write(sip.response_to(msg, status, reason, extra, to_tag="callee", body=body))

    async def register(self) -> sip.SipMessage | None:
        self.request("REGISTER", "sip:127.0.0.1", call_id=f"reg-{self.mac}", cseq=1,
                     to=f"<sip:SEP{self.mac}@127.0.0.1>",
                     extra=(("Contact", f"<sip:SEP{self.mac}@127.0.0.1;transport=tcp>"), ("Expires", "3600")))
        return await self.read()

    def invite(self, callee: str, body: bytes, *, call_id: str = "call-1@a") -> None:
        self.request("INVITE", f"sip:SEP{callee}@127.0.0.1", call_id=call_id, cseq=1, body=body,
                     extra=(("Contact", f"<sip:SEP{self.mac}@127.0.0.1;transport=tcp>"),
                            ("X-Phoneemu-Packets", "3")))


#: a one-phone scenario whose 6th line is the step under test (:func:`loader_error`)
_ONE_STEP_HEAD = """\
reproduces: a loader test
phones:
  a: {mac: 0A00000F0001}
steps:
  - boot: all
"""


def loader_error(step: str) -> Any:
    """The ScenarioError the loader raises for ``step`` (one YAML list item, e.g. ``- network: {...}``) in
    a one-phone scenario ``t.yaml``, after asserting it names line 6 — the step's."""
    from phoneemu.errors import ScenarioError
    from phoneemu.scenario.loader import load_text

    with pytest.raises(ScenarioError) as info:
        load_text(_ONE_STEP_HEAD + f"  {step}\n  - expect: {{phones: a, boot: ok}}\n", "t.yaml")
    assert "t.yaml:6" in str(info.value), str(info.value)
    return info.value


# --------------------------------------------------------------------------- live captures, subprocesses
async def phoneemu_cli(*args: str) -> tuple[int, str]:
    """``python -m phoneemu ARGS`` in a subprocess (the test's loop serves the lab meanwhile): rc and
    stdout + stderr."""
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "phoneemu", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def skip_unless_live(tmp: Path) -> None:
    """Skip the test where a live capture cannot be opened (not root, not Linux)."""
    from phoneemu.errors import ScenarioError
    from phoneemu.scenario.capturing import open_capture

    try:
        probe, _ = open_capture(tmp / "probe", "probe", mode="live")
    except ScenarioError as exc:
        pytest.skip(f"live capture not possible here: {exc}")
    probe.close()


def v6_loopback_missing() -> str | None:
    """Why ``::1`` cannot be used here (None when it can)."""
    import socket

    if not socket.has_ipv6:
        return "Python built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback ({exc})"
    return None


def start_fuzz_serve(*options: str, python: tuple[str, ...] = ("-m", "phoneemu")
                     ) -> tuple[subprocess.Popen[str], int]:
    """``phoneemu fuzz --serve --port 0 OPTIONS`` started (``python``: the interpreter's arguments that
    run phoneemu); the process and the TFTP port it says on stderr."""
    import os
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [sys.executable, *python, "fuzz", "--serve", "--port", "0", *options]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=pipe, stderr=pipe, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving mutants over TFTP on 127.0.0.1:" in line, line
    return proc, int(line.split("127.0.0.1:")[1].split(";")[0])


def finish_process(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str, str]:
    """Wait for ``proc``: its exit status, stdout and stderr (killed if it outlives ``timeout``)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


class MemoryTlsPair:
    """An OpenSSL client and server over memory BIOs, every byte each side sent kept (``to_server``,
    ``to_client``): a TLS session captured without sockets, for the TLS-reading tests."""

    def __init__(self, cctx: ssl.SSLContext, sctx: ssl.SSLContext, *, server_hostname: str = "tvs") -> None:
        self._cin, self._cout, self._sin, self._sout = (ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(),
                                                        ssl.MemoryBIO())
        self.client = cctx.wrap_bio(self._cin, self._cout, server_hostname=server_hostname)
        self.server = sctx.wrap_bio(self._sin, self._sout, server_side=True)
        self.to_server, self.to_client = bytearray(), bytearray()

    def pump(self) -> None:
        """Carry what each side wrote to the other, keeping a copy."""
        data = self._cout.read()
        self.to_server.extend(data)
        self._sin.write(data)
        data = self._sout.read()
        self.to_client.extend(data)
        self._cin.write(data)

    def handshake(self, rounds: int = 20) -> None:
        """Both handshakes to their end (AssertionError when ``rounds`` exchanges do not do it)."""
        done = [False, False]
        for _ in range(rounds):
            for i, end in enumerate((self.client, self.server)):
                if not done[i]:
                    try:
                        end.do_handshake()
                        done[i] = True
                    except ssl.SSLWantReadError:
                        pass
            self.pump()
            if all(done):
                return
        raise AssertionError(f"TLS handshake not done after {rounds} exchanges")


def tftp_exchange_with_a_transfer_port(server: Any, client: Any, lab: str, name: bytes, data: bytes) -> None:
    """A TFTP-looking exchange over UDP sockets: ``client`` asks ``server`` for ``name``; a transfer socket
    of its own on ``lab`` (the transfer's TID) sends one DATA block, the client ACKs it, the transfer socket
    closes (short-lived: what a capture's look at /proc may never see)."""
    import socket

    client.sendto(b"\x00\x01" + name + b"\x00octet\x00", server.getsockname())
    server.recvfrom(100)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as transfer:
        transfer.bind((lab, 0))
        transfer.sendto(b"\x00\x03\x00\x01" + data, client.getsockname())
        _data, at = client.recvfrom(100)
        client.sendto(b"\x00\x04\x00\x01", at)
        transfer.recvfrom(100)


def pristine_lab(name: str, *, now: int, phones: Mapping[str, Mapping[str, Any]],
                 **init_options: Any) -> tuple[Any, Any]:
    """The fixtures ``base_lab`` (module scope: an RSA-1024 lab cluster made at ``now`` in a temporary
    folder named ``name``, with ``init_options`` for :meth:`LabCluster.init` — ``https_key``, ``seed``,
    ``host`` ... — and ``phones``: MAC -> ``add_phone`` options) and ``lab`` (a private copy of it per
    test, :func:`copy_cluster`: key generation once per module)::

        base_lab, lab = pristine_lab("boot-unit", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})
    """
    @pytest.fixture(scope="module")
    def base_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
        from phoneemu.lab.cluster import LabCluster

        root = tmp_path_factory.mktemp(name) / "lab"
        c = LabCluster.init(root, key_spec="rsa1024", now=now, **init_options)
        for mac, options in phones.items():
            c.add_phone(mac, **options)
        return root

    @pytest.fixture
    def lab(base_lab: Path, tmp_path: Path) -> Any:
        """A private copy of one pristine lab (key generation once per module)."""
        return copy_cluster(base_lab, tmp_path)

    return base_lab, lab


def sip_line_store(mac: str, user: str, password: str, profile_name: str = "cp-8861") -> Any:
    """A phone's trust store holding an accepted config with one SIP line (``authName``/``authPassword``):
    what :func:`phoneemu.phone.sip.register` needs to answer a digest challenge, without a boot."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import AcceptedConfig, TrustStore

    store = TrustStore(profile=get_profile(profile_name))
    lines = (f'<sipLines><line button="1"><authName>{user}</authName><authPassword>{password}</authPassword>'
             '</line></sipLines>')
    cfg = config_fmt.DeviceConfig(device_name=f"SEP{mac}", extra={"sipLines": lines})
    store.config = AcceptedConfig(file="SEP.cnf.xml", xml=config_fmt.build(cfg), config=cfg)
    return store


async def register_with(serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                        store: Any, mac: str, *, timeout: float, wait: float) -> tuple[Any, list[Any]]:
    """Register the phone of ``store`` (:func:`sip_line_store`) with a registrar on 127.0.0.1 whose
    connections ``serve`` plays, each closed after it; (the SipResult, the connections' tasks, awaited up
    to ``wait`` s once the phone is done: a caller checks their exceptions)."""
    from phoneemu.phone.events import EventLog
    from phoneemu.phone.sip import register

    tasks: list[asyncio.Task[None]] = []

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        try:
            await serve(r, w)
        finally:
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await register(store, store.profile, mac, "127.0.0.1", sip_port=port, sips_port=1,
                                events=EventLog(50), clock=lambda: 0, timeout=timeout)
    finally:
        server.close()
        if tasks:  # each sees the phone hang up
            await asyncio.wait(tasks, timeout=wait)
        await server.wait_closed()
    return result, tasks


@contextlib.asynccontextmanager
async def http_heads_server(host: str, body: bytes) -> Any:
    """An HTTP server on ``host`` (loopback) answering every request ``200`` with ``body``; yields
    (its port, the request heads it received)."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1], heads
    finally:
        server.close()
        await server.wait_closed()


def fleet_lab(tmp: Path, *, seed: int, start: int, count: int, now: int, mixed_mode: bool = False) -> Any:
    """A lab (RSA-1024 keys: fast) under ``tmp/lab`` with ``count`` phones from MAC ``start`` on, in
    mixed mode when ``mixed_mode`` (a CTL served) — the fleet tests' cluster."""
    from phoneemu.fleet.engine import mac_text
    from phoneemu.lab.cluster import LabCluster

    c = LabCluster.init(tmp / "lab", seed=seed, key_spec="rsa1024", now=now)
    if mixed_mode:
        c.set_mixed_mode(True, now=now)
    c.add_phones([mac_text(start + i) for i in range(count)], now=now)
    return c


def pristine_fleet_lab(name: str, *, seed: int, start: int, count: int, now: int,
                       mixed_mode: bool = False) -> tuple[Any, Any]:
    """The fixtures ``base_lab`` (module scope: the folder of a :func:`fleet_lab`, made once in a temporary
    folder named ``name``: its keys are most of its making) and ``lab`` (a private copy of it per test,
    :func:`copy_cluster`)::

        base_lab, lab = pristine_fleet_lab("fleet", seed=3, start=START, count=COUNT, now=NOW)
    """
    @pytest.fixture(scope="module")
    def base_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
        made = fleet_lab(tmp_path_factory.mktemp(name), seed=seed, start=start, count=count, now=now,
                         mixed_mode=mixed_mode)
        root: Path = made.root
        return root

    @pytest.fixture
    def lab(base_lab: Path, tmp_path: Path) -> Any:
        """A private copy of the module's fleet lab."""
        return copy_cluster(base_lab, tmp_path)

    return base_lab, lab


def held_then_itlrecovery_regenerated(c: Any, tmp: Path, *, now: int, tamper: str | None = None) -> Any:
    """The fleet's :class:`~phoneemu.fleet.engine.Prestate`: what the phones got from the lab (its TFTP
    files, so configs naming its running TVS), then ITLRecovery regenerated (and ``tamper`` tampered):
    each phone must ask TVS about the new ITL's signer — the benchmark's storm."""
    from phoneemu.fleet.engine import Prestate

    prev = tmp / "previous"
    shutil.copytree(c.root / "tftp", prev)
    ctl, itl = c.get("CTLFile.tlv"), c.get("ITLFile.tlv")
    assert ctl is not None and itl is not None
    c.regenerate("itlrecovery", now=now)
    if tamper is not None:
        c.tamper(tamper, now=now)
    return Prestate(ctl=ctl, itl=itl, config_dir=str(prev))


def serve_ports(proc: subprocess.Popen[str], *, transports: tuple[str, ...] = ("udp", "tcp", "tls"),
                timeout: float = 30.0) -> tuple[dict[str, int], list[str]]:
    """The ports a ``lab serve`` subprocess listens on (its ``listening NAME TRANSPORT 127.0.0.1:PORT``
    lines of those ``transports``), read from its stdout until it says how to stop it (``Ctrl-C``), the
    process ends or ``timeout``; with the lines read."""
    import re

    assert proc.stdout is not None
    ports: dict[str, int] = {}
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not any(line.startswith("Ctrl-C") for line in lines) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.match(r"listening (\w+)\s+(\w+) 127\.0\.0\.1:(\d+)", line)
        if m and m.group(2) in transports:
            ports[m.group(1)] = int(m.group(3))
    return ports, lines


def port_free(host: str, port: int, kind: int = 1) -> bool:
    """Whether ``port`` on ``host`` can be bound again (no listener or UDP socket left holding it); ``kind``
    ``socket.SOCK_STREAM`` (1) or ``SOCK_DGRAM`` — a TCP TIME_WAIT a probe left is fine (SO_REUSEADDR)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- phoneemu fuzz interrupted
def ctrl_c() -> None:
    """A real SIGINT, met by the handler in force where it lands (as a Ctrl-C or a SIGTERM is)."""
    import signal

    signal.raise_signal(signal.SIGINT)


def fuzz_summary(out: Path) -> dict[str, Any]:
    """The ``summary.json`` that ``phoneemu fuzz --out OUT`` wrote."""
    import json

    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def ctrl_c_making_fuzz_out(monkeypatch: pytest.MonkeyPatch, *, made: bool) -> None:
    """``phoneemu fuzz`` gets a Ctrl-C as it makes its ``--out`` folder: just after the folder is made
    (``made``), or instead of making it."""
    from phoneemu.commands import _fuzz_common, _fuzz_run, _fuzz_serve

    make = _fuzz_common._make_folder

    def make_then_ctrl_c(folder: Path, option: str) -> None:
        if made:
            make(folder, option)
        ctrl_c()

    for fuzz_mode in (_fuzz_run, _fuzz_serve):  # where --out is made
        monkeypatch.setattr(fuzz_mode, "_make_folder", make_then_ctrl_c)


def ctrl_c_before_fuzz_summary_json(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``phoneemu fuzz`` gets a Ctrl-C just before it writes ``summary.json``; the list returned gets
    ``"signalled"`` once the signal was raised (and its handler returned)."""
    from phoneemu import files

    write = files.atomic_write
    seen: list[str] = []

    def ctrl_c_then_write(path: Path | str, data: bytes, **options: Any) -> None:
        if Path(path).name == "summary.json":
            ctrl_c()
            seen.append("signalled")
        write(path, data, **options)

    monkeypatch.setattr(files, "atomic_write", ctrl_c_then_write)
    return seen


# --------------------------------------------------------------------------- scripted TLS servers
def self_signed_server_context(subject: str, serial: int) -> ssl.SSLContext:
    """A TLS server context presenting a fresh self-signed EC P-256 certificate ``CN=subject;O=phoneemu``
    (valid from a day ago for 30 days), held in memory."""
    import datetime as dt

    from phoneemu.crypto.certs import CertRequest, issue_certificate
    from phoneemu.crypto.keys import KeySpec, generate_key
    from phoneemu.net.tls import server_context

    key = generate_key(KeySpec.parse("ec-p256"))
    now = dt.datetime.now(dt.UTC)
    req = CertRequest(subject=f"CN={subject};O=phoneemu", public_key=key.public_key(), serial=serial,
                      not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
    return server_context(issue_certificate(req, issuer_key=key), key)


def open_sockets() -> int:
    """How many sockets this process has open (Linux: ``/proc/self/fd``)."""
    import contextlib
    import os

    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed since
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


@contextlib.asynccontextmanager
async def scripted_tcp_server(script: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                              host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A loopback TCP server running ``script`` on each connection, its port; an error of the script (the
    client went away: its right) ends that connection only, and the connection is closed whatever
    happened."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        except Exception:  # the client went away: its right
            pass
        finally:
            writer.close()
    server = await asyncio.start_server(handler, host, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def count_lookups(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Every ``socket.getaddrinfo`` of ``name`` in this process from now on (the asyncio loop's
    ``getaddrinfo`` runs it in its executor), answered as the system answers it: the list of calls."""
    real = socket.getaddrinfo
    asked: list[Any] = []

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if host == name:
            asked.append((host, args, kw))
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def assert_written_a_chunk_at_a_time(write: Callable[[Path], object], path: Path, whole: bytes) -> None:
    """``write(path)`` writes a report of over 15 MB, ``whole``, holding less than a third of it in memory
    at a time (the peak of Python's allocations meanwhile, traced by :mod:`tracemalloc`)."""
    import tracemalloc

    tracemalloc.start()
    try:
        write(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert size > 15_000_000, size
    assert peak < size / 3, (peak, size)
    assert path.read_bytes() == whole


def module_lab(name: str, *, seed: int, now: int, phones: Mapping[str, Mapping[str, Any]]) -> Any:
    """A module-scoped ``lab`` fixture: a seeded RSA-1024 lab cluster on 127.0.0.1 made at ``now`` in a
    temporary folder named ``name``, with ``phones`` (MAC -> ``add_phone`` options); one for the module's
    tests, which read it (:func:`pristine_lab` gives each test a copy to change)::

        lab = module_lab("pem", seed=13, now=NOW, phones={MAC: {"now": NOW}})
    """
    @pytest.fixture(scope="module")
    def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
        from phoneemu.lab.cluster import LabCluster

        c = LabCluster.init(tmp_path_factory.mktemp(name) / "lab", seed=seed, key_spec="rsa1024", now=now,
                            host="127.0.0.1")
        for mac, options in phones.items():
            c.add_phone(mac, **options)
        return c
    return lab


def mixed_mode_lab(root: Path, *, seed: int, name: str, mac: str, now: int) -> Any:
    """A seeded RSA-1024 lab cluster named ``name`` in ``root``, made at ``now`` with one phone ``mac``, in
    mixed mode (it serves a CTL: spec §G.4)."""
    from phoneemu.lab.cluster import LabCluster

    lab = LabCluster.init(root, seed=seed, name=name, key_spec="rsa1024", now=now)
    lab.add_phone(mac, now=now)
    lab.set_mixed_mode(True, now=now)
    return lab


# --------------------------------------------------------------------------- one phone's ways out
def placeholders_left(text: str) -> set[str]:
    """The placeholder words (:data:`phoneemu.phone.ways_out.PLACEHOLDERS`) of the ``lab:`` lines (the
    commands of the ways out) of ``text``."""
    from phoneemu.phone.ways_out import PLACEHOLDERS

    word = re.compile(rf"\b(?:{'|'.join(PLACEHOLDERS)})\b")
    return {m.group(0) for line in text.splitlines() if line.strip().startswith("lab: ")
            for m in word.finditer(line.split("rehearse:")[0])}


def legend_of(text: str) -> list[str]:
    """The legend lines of ``text`` (``NAME: meaning (why it is left)``), stripped, in order."""
    from phoneemu.phone.ways_out import PLACEHOLDERS

    return [line.strip() for line in text.splitlines()
            if any(line.strip().startswith(f"{name}: {meaning} (") for name, meaning in PLACEHOLDERS.items())]


def moved_labs(where: Path, *, mac: str, now: int, seeds: tuple[int, int]) -> Path:
    """In ``where``: labs ``a`` (the phone ``mac``'s ITL now) and ``b`` (where it moves, its ITL signed by a
    signer a's does not name: G.3.5-reject-unknown-signer), each seeded by ``seeds``, and a copy of a's ITL
    outside any lab, ``a-ITLFile.tlv``; ``where``."""
    import shutil

    from phoneemu.lab.cluster import LabCluster

    for name, seed in zip(("a", "b"), seeds, strict=True):
        lab = LabCluster.init(where / name, seed=seed, key_spec="rsa1024", now=now, name=name)
        lab.add_phone(mac, now=now)
    shutil.copyfile(where / "a" / "tftp" / "ITLFile.tlv", where / "a-ITLFile.tlv")
    return where


def capf_store_stopped_at_its_certificate(pki: Any, monkeypatch: pytest.MonkeyPatch, *, now: int) -> None:
    """A store of the lab PKI ``pki``'s ``capf`` identity stopped (SystemExit, as a kill would) once its new
    key is in place, its certificate still staged: the rename of the certificate never happens."""
    real_replace = os.replace
    cert_path = Path(pki.cert_path("capf"))

    def stopped_at_the_certificate(src: Any, dst: Any) -> None:
        if Path(str(dst)) == cert_path:
            raise SystemExit("stopped")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", stopped_at_the_certificate)
    with pytest.raises(SystemExit):
        pki.create("capf", now=now, generation=1)
    monkeypatch.setattr(os, "replace", real_replace)


async def tvs_unreachable(*_a: Any, **_k: Any) -> Any:
    """A boot's ``tvs`` asker for a test without TVS: every question unreachable."""
    from phoneemu.errors import TransportError

    raise TransportError("no TVS in this test", kind="unreachable")


async def capf_unreachable(*_a: Any, **_k: Any) -> Any:
    """A boot's ``capf`` runner for a test without CAPF: every session unreachable."""
    from phoneemu.errors import TransportError

    raise TransportError("no CAPF in this test", kind="unreachable")


def fsyncs_skipped() -> Any:
    """A module-scoped autouse fixture for a module none of whose tests is about what survives a crash
    (tests/unit/test_lab_cluster.py, test_flash.py and test_files.py are): ``os.fsync`` does nothing, every
    write is made as always, atomic renames included, without waiting for the disk — on a loaded VM disk
    the fsyncs of a lab's changes and of a phone's flash were half the wall time of a module that makes
    hundreds of them::

        no_fsync = fsyncs_skipped()
    """
    @pytest.fixture(scope="module", autouse=True)
    def fsyncs_skipped_here() -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "fsync", lambda _fd: None)
            yield
    return fsyncs_skipped_here
