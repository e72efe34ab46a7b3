"""``phoneemu boot`` says over which transport and port the files came, where a ``--lab DIR``'s lab serve
listens when ``--tftp`` names another address, what it is still waiting for, and what it was waiting for
when interrupted (:mod:`phoneemu.commands._watched_fetch`).

Was: a ``--tftp`` port nobody listens on went unseen while HTTP answered every file (a cp-8861 asks HTTP
first, spec §H.1), the boot saying nothing of the port; a boot nothing answered was told to start lab
serve on the port it asked, beside the lab serve running on another; a silent server printed nothing for
the boot's 40 s, and Ctrl-C said only "interrupted"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import threading
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands._watched_fetch import Ports, WatchedFetcher
from phoneemu.errors import TransportError
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

NOW = 1_780_000_000
MAC = "0A0000000F51"


def _free_port(kind: int) -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lab(tmp_path: Path) -> LabCluster:
    lab = LabCluster.init(tmp_path / "lab", seed=11, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phone(MAC, now=NOW)
    return lab


def test_a_wrong_tftp_port_behind_an_answering_http_is_said(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    lab = _lab(tmp_path)
    ports, stop = serve_in_thread(lab)
    LabCluster.open(lab.root).set_ports(tftp=ports["tftp"], http=ports["http"], now=NOW)  # as lab serve does
    wrong = _free_port(socket.SOCK_DGRAM)
    common = ["boot", "--mac", MAC, "--lab", str(lab.root), "--now", str(NOW)]
    try:
        elsewhere = [*common, "--tftp", f"127.0.0.1:{wrong}", "--http-port", str(ports["http"])]
        assert main(elsewhere) == 0
        out = capsys.readouterr().out
        assert main([*elsewhere, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert main([*common, "--tftp", f"127.0.0.1:{ports['tftp']}", "--no-http"]) == 0
        tftp_out = capsys.readouterr().out
    finally:
        stop()
    files = next(line for line in out.splitlines() if line.startswith("  files:"))
    assert files.endswith(f"request(s) answered over HTTP 127.0.0.1:{ports['http']}; TFTP 127.0.0.1:{wrong} "
                          "not asked (HTTP answered every request; --no-http tries TFTP alone)"), files
    assert (f"  note:      --tftp 127.0.0.1:{wrong} is not where lab serve of {lab.root} last listened, "
            f"127.0.0.1:{ports['tftp']} (HTTP {ports['http']}): leave --tftp out to boot there") in out, out
    asked = doc["transports"]
    assert asked["tftp"] == {"address": f"127.0.0.1:{wrong}", "requests": 0, "answered": 0}, asked
    assert asked["http"]["address"] == f"127.0.0.1:{ports['http']}" and asked["http"]["answered"] > 0, asked
    assert f"answered over TFTP 127.0.0.1:{ports['tftp']}\n" in tftp_out, tftp_out
    assert "note:" not in tftp_out and "HTTP" not in tftp_out.split("files:")[1].splitlines()[0], tftp_out


def test_nothing_answered_names_where_the_labs_serve_listened(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    lab = _lab(tmp_path)
    lab.set_ports(tftp=16969, http=16970, now=NOW)  # a lab serve recorded them
    asked = _free_port(socket.SOCK_DGRAM)
    assert main(["boot", "--mac", MAC, "--lab", str(lab.root), "--tftp", f"127.0.0.1:{asked}", "--no-http",
                 "--timeout", "0.2"]) == 1
    err = capsys.readouterr().err
    assert (f"phoneemu boot: nothing answered at 127.0.0.1 (TFTP port {asked}), and lab serve of {lab.root} "
            "last listened at 127.0.0.1:16969 (HTTP 16970): leave --tftp out to boot where it listens (or: "
            f"phoneemu lab serve {lab.root} --tftp-port {asked})") in err, err


def test_a_slow_request_is_said_once_and_an_interrupted_one_named() -> None:
    said: list[str] = []
    never = asyncio.Event()

    class Silent:  # a TFTP server that never answers
        transport = "tftp"

        async def fetch(self, name: str) -> bytes:
            await asyncio.wait_for(never.wait(), 5)
            raise TransportError("no answer", kind="timeout", path=name)

    watched = WatchedFetcher(Silent(), Ports("127.0.0.1", 16969, None), tell=said.append, slow_s=0.05)

    async def boot() -> None:
        task = asyncio.ensure_future(watched.fetch("CTLSEP0A0000000F51.tlv"))
        await asyncio.sleep(0.3)
        task.cancel()  # as asyncio.run does on Ctrl-C
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(boot())
    assert said == ["still waiting for CTLSEP0A0000000F51.tlv after 0.05 s, asked of TFTP 127.0.0.1:16969: a "
                    "server that does not answer costs each file its tries of --timeout (Ctrl-C stops)"], said
    text = watched.interrupted_text()
    assert text is not None and re.fullmatch(r"interrupted while waiting \d+ s for CTLSEP0A0000000F51\.tlv "
                                             r"from TFTP 127\.0\.0\.1:16969 \(0 request\(s\) answered or "
                                             r"failed before it\)", text), text


def _ctrl_c_once_asked(silent: socket.socket, boot_ended: threading.Event) -> threading.Thread:
    """A thread that, once ``silent`` has a request (10 s at most), sends SIGINT to the main thread, as a
    terminal's Ctrl-C reaches it: its wait for the answer ends at once (a signal raised in this thread would
    be seen there only when that wait timed out, the phone's --timeout later)."""
    def ctrl_c_when_asked() -> None:
        silent.settimeout(10)
        with contextlib.suppress(TimeoutError):
            silent.recvfrom(2048)
            if not boot_ended.is_set():
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=ctrl_c_when_asked, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_during_a_boot_names_the_request_under_way(capsys: pytest.CaptureFixture[str]) -> None:
    boot_ended = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes requests, answers none
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        watcher = _ctrl_c_once_asked(silent, boot_ended)
        try:
            code = main(["boot", "--mac", MAC, "--tftp", f"127.0.0.1:{port}", "--no-http", "--timeout", "3"])
        finally:
            boot_ended.set()
            watcher.join(15)
    err = capsys.readouterr().err
    assert code == 130, err
    said = (rf"phoneemu boot: interrupted while waiting \d+ s for CTLSEP{MAC}\.tlv from TFTP "
            rf"127\.0\.0\.1:{port} \(0 request\(s\) answered or failed before it\)\n"
            r"phoneemu boot: interrupted\n")
    assert re.search(said, err), err


def test_an_http_port_nobody_listens_on_behind_an_answering_tftp_is_said(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each file HTTP failed and TFTP then answered is a request of both: was "7 of 7 request(s) answered
    over TFTP" alone and ``"http": {"requests": 0}`` in the JSON, the dead HTTP port (asked first for
    every file, spec §H.1) unseen, as the wrong TFTP port was behind an answering HTTP."""
    lab = _lab(tmp_path)
    ports, stop = serve_in_thread(lab)
    dead = _free_port(socket.SOCK_STREAM)
    asked = ["boot", "--mac", MAC, "--lab", str(lab.root), "--now", str(NOW),
             "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(dead)]
    try:
        assert main(asked) == 0
        out = capsys.readouterr().out
        assert main([*asked, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
    finally:
        stop()
    transports = doc["transports"]
    n = transports["tftp"]["requests"]
    assert n > 0 and transports["tftp"]["answered"] == n, transports
    assert transports["http"] == {"address": f"127.0.0.1:{dead}", "requests": n, "answered": 0}, transports
    files = next(line for line in out.splitlines() if line.startswith("  files:"))
    assert files == (f"  files:     0 of {n} request(s) answered over HTTP 127.0.0.1:{dead}; {n} of {n} "
                     f"request(s) answered over TFTP 127.0.0.1:{ports['tftp']}"), files


class _Fallback:
    """An HTTP-then-TFTP fetcher (``last_fallback`` as :class:`phoneemu.net.fetch.HttpThenTftpFetcher`
    keeps it) whose HTTP answers the names in ``http`` and falls back for the others to a TFTP that
    answers none."""

    def __init__(self, http: set[str]) -> None:
        self.http = http
        self.last_fallback: TransportError | None = None
        self.transport = ""

    async def fetch(self, name: str) -> bytes:
        self.last_fallback = None
        if name in self.http:
            self.transport = "http"
            return b"data"
        self.transport = "tftp"
        self.last_fallback = TransportError("cannot connect", kind="unreachable", path=name)
        raise TransportError("no answer", kind="timeout", path=name)


def _fetch_each(watched: WatchedFetcher, *names: str) -> None:
    """Fetch ``names`` in turn, as a boot does, each failure (a TransportError, an OSError) kept counted."""
    async def boot() -> None:
        for name in names:
            with contextlib.suppress(TransportError, OSError):
                await watched.fetch(name)

    asyncio.run(boot())


def test_requests_failing_over_both_transports_count_on_both() -> None:
    """A request HTTP failed and TFTP did not answer either: a request of each, neither answering (was
    counted on TFTP alone, so HTTP "answered" all it was asked, 2 of 2, though it was asked 3 times)."""
    watched = WatchedFetcher(_Fallback({"a", "b"}), Ports("::1", 6969, 6970), tell=lambda _text: None)

    _fetch_each(watched, "a", "b", "c")
    assert watched.summary() == ("2 of 3 request(s) answered over HTTP [::1]:6970; 0 of 1 request(s) "
                                 "answered over TFTP [::1]:6969"), watched.summary()
    assert watched.as_dict() == {"http": {"address": "[::1]:6970", "requests": 3, "answered": 2},
                                 "tftp": {"address": "[::1]:6969", "requests": 1, "answered": 0}}


def test_http_is_said_to_answer_every_request_only_when_it_did() -> None:
    """An HTTP request that failed without a fallback to TFTP (an OSError, no answer) is no answer: the
    ``files:`` line does not say that HTTP answered every request (it said so as soon as one was)."""
    class Refusing(_Fallback):
        async def fetch(self, name: str) -> bytes:
            if name == "c":
                self.last_fallback = None
                raise OSError("connection reset")
            return await super().fetch(name)

    watched = WatchedFetcher(Refusing({"a", "b"}), Ports("127.0.0.1", 6969, 6970), tell=lambda _text: None)

    _fetch_each(watched, "a", "b", "c")
    assert watched.summary() == "2 of 3 request(s) answered over HTTP 127.0.0.1:6970", watched.summary()
