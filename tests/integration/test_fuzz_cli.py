"""``phoneemu fuzz`` end to end: exit codes, crash directories, reproducibility, --serve over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shlex
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.errors import TransportError
from phoneemu.fuzz.corpus import build_corpus, renamed
from phoneemu.fuzz.engine import input_for
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import ServeSession, serve_session
from tests.fuzz_helpers import run_line, split_line

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*ARGS)``: ``phoneemu fuzz ARGS`` run in this process from the checkout's folder (as a user
    there would), its exit status, stdout and stderr. In process: none of these runs is about the process
    (a child interpreter each cost ~0.5 s of CPU); a printed command line is still run by a shell
    (:func:`run_line`)."""
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        rc = main(["fuzz", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["phoneemu", "fuzz", *args], rc, out, err)
    return run


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--help"])
    out = capsys.readouterr().out
    assert "--target-cmd" in out and "examples:" in out and "--replay" in out


def test_clean_target_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["fuzz", "--format", "sgn", "--target", "phoneemu", "--runs", "300", "--seed", "1",
               "--out", str(tmp_path), "-q"])
    assert rc == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["execs"] == 300 and summary["findings"] == []
    assert not (tmp_path / "crashes").exists()
    assert "300 execs" in capsys.readouterr().out


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert main(["fuzz", "--format", "itl", "--target", "phoneemu", "--out", str(tmp_path)]) == 2
    bad_target = ["--target", "nomodule", "--runs", "1", "--out", str(tmp_path)]
    assert main(["fuzz", "--format", "itl", *bad_target]) == 2


@pytest.mark.parametrize("codes", ["999", "-1", "1,\u0663", "x"])
def test_crash_exit_statuses_are_0_to_255(tmp_path: Path, codes: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """'999' and '-1' (no exit status can be either) and non-ASCII digits were taken."""
    argv = ["fuzz", "--format", "itl", "--target-cmd", "true {}", "--crash-exit", codes, "--runs", "1",
            "--out", str(tmp_path / "fz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected exit statuses 0..255" in err, err


def test_serve_on_a_port_in_use_names_the_server_and_address(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Was 'phoneemu fuzz: Address already in use' (or 'Name or service not known'): which server, where?"""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        argv = ["fuzz", "--format", "itl", "--serve", "--port", str(taken), "--runs", "1",
                "--out", str(tmp_path / "fz")]
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen for tftp on 127.0.0.1:{taken}:" in err, err


def test_crashy_target_exits_one_with_crash_dir_and_replay(tmp_path: Path, cli: Callable[..., Any]) -> None:
    out = tmp_path / "fz"
    r = cli("--format", "itl", "--target", "tests.fuzz_helpers:crashy", "--runs", "150", "--seed", "5",
            "--out", str(out))
    assert r.returncode == 1, r.stderr
    assert "execs/s" in r.stderr  # progress (plain lines: not a TTY)
    (crash,) = (out / "crashes").iterdir()
    assert {p.name for p in crash.iterdir()} == {"input.bin", "minimized.bin", "info.json"}
    info = json.loads((crash / "info.json").read_text())
    assert info["seed"] == 5 and info["signature"].startswith("IndexError at tests/fuzz_helpers.py:")
    assert "deliberate crash" in info["detail"]
    # the one-line command reproduces the crash, from any folder (tests.fuzz_helpers is found in ROOT,
    # where the fuzzer ran: the command goes there first)
    folder, replay = split_line(info["reproduce"])
    assert folder == ROOT and replay[:2] == ["phoneemu", "fuzz"]
    again = run_line(info["reproduce"], cwd=tmp_path)
    assert again.returncode == 1 and "IndexError" in again.stdout
    # the regenerate command makes the same input from seed and run index
    regen = f"{info['regenerate']} --regenerate {shlex.quote(str(tmp_path / 'regen'))} --no-minimize"
    again = run_line(regen, cwd=tmp_path)
    assert again.returncode == 1
    assert (tmp_path / "regen" / "input.bin").read_bytes() == (crash / "input.bin").read_bytes()


def test_same_seed_same_inputs(tmp_path: Path, cli: Callable[..., Any]) -> None:
    seen = []
    for name in ("a", "b"):
        out = tmp_path / name
        r = cli("--format", "ctl", "--target-cmd", f"cp {{}} {out}/last.bin", "--runs", "5", "--seed", "9",
                "--out", str(out), "-q")
        assert r.returncode == 0, r.stderr
        seen.append((out / "last.bin").read_bytes())
    assert seen[0] == seen[1] == input_for(Mutator(build_corpus("ctl")), 9, 4).data


def test_target_cmd_killed_by_signal(tmp_path: Path, cli: Callable[..., Any]) -> None:
    r = cli("--format", "sgn", "--target-cmd", "sh -c 'kill -SEGV $$' {}", "--runs", "3", "--no-minimize",
            "--out", str(tmp_path), "-q")
    assert r.returncode == 1
    (crash,) = (tmp_path / "crashes").iterdir()
    info = json.loads((crash / "info.json").read_text())
    assert info["signature"] == "killed by SIGSEGV" and info["count"] == 3
    assert "--target-cmd" in info["reproduce"]


def test_serve_hands_mutants_to_a_tftp_client(tmp_path: Path) -> None:
    from phoneemu.net.tftp import tftp_get

    mut = Mutator(build_corpus("itl"))

    def make(i: int, _name: str) -> tuple[bytes, dict[str, object]]:
        m = input_for(mut, 4, i)
        return m.data, {"ops": list(m.ops)}

    session = ServeSession(fmt="itl", make=make, seed=4, out=tmp_path, runs=3, mac="001122334455")
    got: list[bytes] = []
    missing: list[str] = []

    async def device(port: int) -> None:
        for name in ("ITLSEP001122334455.tlv", "SEP001122334455.cnf.xml", "ITLFile.tlv", "ITLFile.tlv"):
            try:
                got.append(await tftp_get("127.0.0.1", port, name, timeout=0.5, retries=2))
            except TransportError as exc:
                assert exc.kind == "not-found"
                missing.append(name)

    async def run() -> None:
        ports: asyncio.Queue[int] = asyncio.Queue()
        server = asyncio.create_task(serve_session(session, port=0, time_limit=10, ready=ports.put_nowait))
        await device(await ports.get())
        await asyncio.wait_for(server, 10)

    asyncio.run(run())
    assert got == [input_for(mut, 4, i).data for i in range(3)]
    assert missing == ["SEP001122334455.cnf.xml"]
    served = sorted(p.name for p in (tmp_path / "served").glob("0000*"))
    assert served == ["000000-ITLSEP001122334455.tlv", "000001-ITLFile.tlv", "000002-ITLFile.tlv"]
    log = [json.loads(line) for line in (tmp_path / "served" / "requests.jsonl").read_text().splitlines()]
    assert [e["index"] for e in log if e["event"] == "served"] == [0, 1, 2]
    assert all(e["seed"] == 4 for e in log if e["event"] == "served")
    assert sum(1 for e in log if e["event"] == "request") == 4


class _ServeStderr(io.StringIO):
    """The stderr of an in-process ``fuzz --serve``: all it says, kept; :attr:`port` once it said where it
    serves over TFTP (its first line), :attr:`said` set then — or when the command ended without it."""

    HEAD = "serving mutants over TFTP on 127.0.0.1:"

    def __init__(self) -> None:
        super().__init__()
        self.port: int | None = None
        self.said = threading.Event()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            written = super().write(text)
            said = self.getvalue()
        if self.port is None and self.HEAD in said and ";" in said.split(self.HEAD, 1)[1]:
            self.port = int(said.split(self.HEAD, 1)[1].split(";")[0])
            self.said.set()
        return written


def _serve_cli_with(device: Callable[[int], object], *options: str) -> tuple[int, str, str]:
    """``phoneemu fuzz --serve --port 0 OPTIONS`` run in this process (none of its tests is about the
    process: a child interpreter each cost ~0.6 s of CPU), with ``device(port)`` run against it from a
    thread once the command said its TFTP port: its exit status, stdout and stderr. Bounded: the device
    waits at most 30 s for the port and is waited for at most 30 s after the command (whose ``--time``
    bounds it)."""
    err, out = _ServeStderr(), io.StringIO()
    failed: list[BaseException] = []

    def run_device() -> None:
        if err.said.wait(30) and err.port is not None:
            try:
                device(err.port)
            except BaseException as exc:  # raised again in the test's thread
                failed.append(exc)

    thread = threading.Thread(target=run_device, name="fuzz-serve-device", daemon=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        thread.start()
        try:
            status = main(["fuzz", "--serve", "--port", "0", *options])
        finally:
            err.said.set()  # ended without saying its port: the device is not run
            thread.join(30)
    assert not thread.is_alive(), "the device outlived the serve by 30 s"
    said = err.getvalue()
    assert err.port is not None and err.HEAD in said.splitlines()[0], f"no TFTP port said first: {said!r}"
    if failed:
        raise failed[0]
    return status, out.getvalue(), said


def test_cli_serve_over_loopback(tmp_path: Path) -> None:
    from phoneemu.net.tftp import tftp_get

    got: list[bytes] = []

    async def device(port: int) -> None:
        for _ in range(2):
            got.append(await tftp_get("127.0.0.1", port, "SEPAABBCCDDEEFF.cnf.xml.sgn", timeout=1.0,
                                      retries=3))

    rc, out, _err = _serve_cli_with(lambda port: asyncio.run(device(port)), "--format", "sgn", "--runs", "2",
                                    "--time", "30", "--seed", "6", "--out", str(tmp_path))
    assert rc == 0
    assert "served 2 mutant(s)" in out
    # the seeds carry the requested name (spec §G.4), re-signed: mutants of them are what is served
    mut = Mutator(renamed(build_corpus("sgn"), "SEPAABBCCDDEEFF.cnf.xml.sgn"))
    assert got == [input_for(mut, 6, 0).data, input_for(mut, 6, 1).data]


def test_serve_over_http_and_tftp(tmp_path: Path) -> None:
    """--http-port: a phone fetching over HTTP 6970 (as SBD phones do first) gets the mutants too;
    both transports draw from the same sequence and are logged with their outcome."""
    from phoneemu.net.http import http_get
    from phoneemu.net.tftp import tftp_get

    mut = Mutator(build_corpus("sgn"))

    def make(i: int, _name: str) -> tuple[bytes, dict[str, object]]:
        m = input_for(mut, 9, i)
        return m.data, {"ops": list(m.ops)}

    session = ServeSession(fmt="sgn", make=make, seed=9, out=tmp_path, runs=3)
    name = "SEP001122334455.cnf.xml.sgn"

    async def run() -> list[bytes]:
        tftp_ports: asyncio.Queue[int] = asyncio.Queue()
        http_ports: asyncio.Queue[int] = asyncio.Queue()
        server = asyncio.create_task(serve_session(session, port=0, time_limit=10,
                                                   ready=tftp_ports.put_nowait, http_port=0,
                                                   http_ready=http_ports.put_nowait))
        tftp_port, http_port = await tftp_ports.get(), await http_ports.get()
        got = [await http_get("127.0.0.1", http_port, name, timeout=2.0),
               await tftp_get("127.0.0.1", tftp_port, name, timeout=0.5, retries=2),
               await http_get("127.0.0.1", http_port, name, timeout=2.0)]
        with pytest.raises(TransportError):  # the session is exhausted: "not found"
            await http_get("127.0.0.1", http_port, name, timeout=2.0)
        await asyncio.wait_for(server, 10)
        return got

    assert asyncio.run(run()) == [input_for(mut, 9, i).data for i in range(3)]
    log = [json.loads(line) for line in (tmp_path / "served" / "requests.jsonl").read_text().splitlines()]
    http = [e for e in log if e["event"] == "request" and e.get("protocol") == "http"]
    assert [e["outcome"] for e in http] == ["ok", "ok", "not-found"]


def test_firmware_format_finds_a_crashing_user_parser_and_exports_its_seeds(tmp_path: Path,
                                                                          cli: Callable[..., Any]) -> None:
    """``--format firmware``: signed loads (our layout, spec §D) fuzzed against a user's parser; its
    crash is a finding; ``--export-corpus`` writes ``.loads`` seeds and the image-signing cert."""
    out = tmp_path / "fz"
    r = cli("--format", "firmware", "--target", "tests.fuzz_helpers:crashy", "--runs", "100", "--seed", "3",
            "--out", str(out), "--no-minimize")
    assert r.returncode == 1, r.stderr
    (crash,) = (out / "crashes").iterdir()
    assert json.loads((crash / "info.json").read_text())["signature"].startswith("IndexError")
    r = cli("--format", "firmware", "--export-corpus", str(tmp_path / "seeds"))
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "seeds").iterdir())
    assert "00-sip88xx-sha512.loads" in names and "verify.pem" in names
    seed = (tmp_path / "seeds" / "00-sip88xx-sha512.loads").read_bytes()
    r = cli("--format", "firmware", "--target", "phoneemu", "--runs", "300", "--seed", "1", "--out",
            str(tmp_path / "ours"))
    assert r.returncode == 0 and seed  # our own firmware parser: no finding


def test_serve_reports_a_device_that_falls_silent_after_a_mutant(tmp_path: Path) -> None:
    """``--silent-after``: a device that asks again after each mutant survived it; one that asks for
    nothing within S seconds after one is a finding (the mutant saved in crashes/silent-<index>/); the
    session ends once the last mutant is watched out."""
    from phoneemu.net.tftp import tftp_get

    mut = Mutator(build_corpus("itl"))

    def make(i: int, _name: str) -> tuple[bytes, dict[str, object]]:
        return input_for(mut, 5, i).data, {}

    session = ServeSession(fmt="itl", make=make, seed=5, out=tmp_path, runs=3, silent_after=0.5)
    silences: list[dict[str, object]] = []

    async def device(port: int) -> None:
        for _ in range(2):  # mutant 0, then a request after it: it survived; then mutant 1, and silence
            await tftp_get("127.0.0.1", port, "ITLFile.tlv", timeout=0.5, retries=2)
        await asyncio.sleep(1.0)
        await tftp_get("127.0.0.1", port, "ITLFile.tlv", timeout=0.5, retries=2)  # reset: mutant 2, silence

    async def run() -> None:
        ports: asyncio.Queue[int] = asyncio.Queue()
        server = asyncio.create_task(serve_session(session, port=0, time_limit=10, ready=ports.put_nowait,
                                                   on_silence=silences.append))
        await device(await ports.get())
        await asyncio.wait_for(server, 10)

    asyncio.run(run())
    assert [f["index"] for f in silences] == [1, 2] == [f["index"] for f in session.silences]
    info = json.loads((tmp_path / "crashes" / "silent-000001" / "info.json").read_text())
    assert info["kind"] == "silence" and info["name"] == "ITLFile.tlv" and info["silent_s"] >= 0.5
    assert (tmp_path / "crashes" / "silent-000001" / "input.bin").read_bytes() == input_for(mut, 5, 1).data
    assert not (tmp_path / "crashes" / "silent-000000").exists()
    log = [json.loads(line) for line in (tmp_path / "served" / "requests.jsonl").read_text().splitlines()]
    assert [e["index"] for e in log if e["event"] == "silent"] == [1, 2]


def test_cli_serve_exits_one_when_the_device_fell_silent(tmp_path: Path) -> None:
    from phoneemu.net.tftp import tftp_get

    rc, out, err = _serve_cli_with(  # one request, then nothing
        lambda port: asyncio.run(tftp_get("127.0.0.1", port, "ITLFile.tlv", timeout=1.0, retries=3)),
        "--format", "itl", "--runs", "1", "--time", "30", "--silent-after", "0.3", "--out", str(tmp_path))
    assert rc == 1, (out, err)
    assert "silent after 1 mutant(s) (0: crashes/silent-*)" in out
    assert "the device asked for nothing in" in err and "after mutant 0 (ITLFile.tlv)" in err
    assert main(["fuzz", "--format", "itl", "--target", "phoneemu", "--runs", "1", "--out", str(tmp_path),
                 "--silent-after", "1"]) == 2  # for --serve only


def test_device_alone_is_served_and_watched(tmp_path: Path) -> None:
    """``--device``: another host's requests are refused by both servers (TFTP access violation, HTTP
    403), get no mutant and do not count as the device's: its silence after a mutant is still found."""
    from phoneemu.net.http import http_get
    from phoneemu.net.tftp import tftp_get
    from phoneemu.values import host_matcher

    mut = Mutator(build_corpus("itl"))

    def make(i: int, _name: str) -> tuple[bytes, dict[str, object]]:
        return input_for(mut, 7, i).data, {}

    device = {"host": "127.0.0.1"}

    def allow(host: str) -> bool:
        return host_matcher(device["host"])(host)
    session = ServeSession(fmt="itl", make=make, seed=7, out=tmp_path, runs=1, silent_after=0.6)

    async def run() -> list[str]:
        tftp_ports: asyncio.Queue[int] = asyncio.Queue()
        http_ports: asyncio.Queue[int] = asyncio.Queue()
        server = asyncio.create_task(serve_session(
            session, port=0, time_limit=10, ready=tftp_ports.put_nowait, http_port=0,
            http_ready=http_ports.put_nowait, allow_peer=allow))
        tftp_port, http_port = await tftp_ports.get(), await http_ports.get()
        assert await tftp_get("127.0.0.1", tftp_port, "ITLFile.tlv", timeout=0.5, retries=2) == \
            input_for(mut, 7, 0).data
        device["host"] = "127.0.0.2"  # from now on 127.0.0.1 is another phone of the lab network
        refused = []
        for _ in range(3):  # asking again and again, it neither gets a mutant nor hides the silence
            with pytest.raises(TransportError) as tftp_exc:
                await tftp_get("127.0.0.1", tftp_port, "ITLFile.tlv", timeout=0.5, retries=2)
            with pytest.raises(TransportError) as http_exc:
                await http_get("127.0.0.1", http_port, "ITLFile.tlv", timeout=2.0)
            refused += [str(tftp_exc.value), str(http_exc.value)]
            await asyncio.sleep(0.3)
        await asyncio.wait_for(server, 10)
        return refused

    refused = asyncio.run(run())
    assert "access violation" in refused[0] and "403" in refused[1]
    assert session.served == 1 and [f["index"] for f in session.silences] == [0]
    log = [json.loads(line) for line in (tmp_path / "served" / "requests.jsonl").read_text().splitlines()]
    outcomes = [e["outcome"] for e in log if e["event"] == "request"]
    assert outcomes.count("refused") == 6 and outcomes.count("ok") == 1
    assert all(e["detail"] in ("host not served", "HTTP 403") for e in log if e.get("outcome") == "refused")


def test_cli_device_option(tmp_path: Path) -> None:
    from phoneemu.net.tftp import tftp_get

    def another_host(port: int) -> None:
        with pytest.raises(TransportError, match="access violation"):
            asyncio.run(tftp_get("127.0.0.1", port, "ITLFile.tlv", timeout=1.0, retries=3))

    # --time 1: the refused request never counts as a run, so the serve waits out its time (the request
    # goes as soon as the serve said its port)
    rc, out, err = _serve_cli_with(another_host, "--format", "itl", "--runs", "1", "--time", "1",
                                   "--device", "127.0.0.2", "--out", str(tmp_path))
    assert rc == 0, (out, err)
    assert "served 0 mutant(s)" in out and "refused 1" in out
    for bad in (["--device", "phone7"], ["--device", "10.0.0.300"]):
        assert main(["fuzz", "--format", "itl", "--serve", "--runs", "1", "--out", str(tmp_path), *bad]) == 2
    assert main(["fuzz", "--format", "itl", "--target", "phoneemu", "--runs", "1", "--out", str(tmp_path),
                 "--device", "127.0.0.1"]) == 2  # for --serve only
