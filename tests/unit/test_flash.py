"""Flash persistence: round trip, 0600 keys, erase/factory reset, crash safety (old or new, never torn)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.formats import config as config_fmt
from phoneemu.formats import trustlist
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone.flash import KEY_FILES, Flash, atomic_write
from phoneemu.phone.profile import get_profile, profile_from_dict
from phoneemu.phone.store import Credential, InternCache, TrustStore

NOW = 1_800_000_000
P = get_profile("cp-8861")
ROOT = Path(__file__).resolve().parents[2]


@cache
def _ident(name: str) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(KeySpec(kind="rsa", bits=1024), unsafe_seed=f"flash-{name}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=f"CN={name}", public_key=key.public_key(), serial=len(name) + 3,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=900))
    return key, certs.issue_certificate(req, issuer_key=key)


def _tl(kind: str, ts: int = NOW, n: int = 1) -> bytes:
    key, cert = _ident("sast")
    recs = [TrustRecord.from_certificate(cert, Role.SAST)] * n
    return trustlist.build(kind=kind, records=recs, signer=FileSigner(key=key, cert=cert),  # type: ignore[arg-type]
                           timestamp=ts)


def _booted(tmp_path: Path) -> tuple[Flash, TrustStore]:
    key, cert = _ident("mic")
    store = TrustStore(profile=P, mic=Credential.of(cert, key), intern=InternCache())
    xml = config_fmt.build(DeviceConfig(device_name="SEP001122334455", capf_auth_mode=3,
                                        tvs_servers=(Server(host="127.0.0.1", port=2445),)))
    store.apply(rules.decide_config(store, "SEP001122334455.cnf.xml", xml, profile=P, now=NOW))
    for kind in ("CTL", "ITL"):
        store.apply(rules.decide_trust_list(store, _tl(kind), kind=kind, profile=P, now=NOW))
    store.lsc = Credential.of(*_ident("lsc")[::-1])
    store.firmware_load = "sip88xx.14-2-1"
    fl = Flash(tmp_path / "phone", profile=P, intern=InternCache())
    fl.save(store)
    return fl, store


def test_round_trip(tmp_path: Path) -> None:
    fl, store = _booted(tmp_path)
    back = fl.load()
    assert fl.problems == []
    assert back.ctl is not None and store.ctl is not None and back.ctl.raw == store.ctl.raw
    assert back.itl is not None and store.itl is not None and back.itl.raw == store.itl.raw
    assert back.config is not None and store.config is not None and back.config.config == store.config.config
    assert (back.ctl_rule, back.itl_rule, back.config_rule) == ("G.2-first-ctl-tofu", "G.3.2-signed-by-ctl",
                                                                 "G.4-unsigned-no-trust-list")
    assert back.mic == store.mic and back.lsc == store.lsc
    assert back.capf_auth_mode == 3 and back.firmware_load == "sip88xx.14-2-1"
    assert back.tvs_servers == store.tvs_servers
    mtimes = {p.name: p.stat().st_mtime_ns for p in fl.path.iterdir()}
    fl.save(back)  # unchanged files are not rewritten
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in fl.path.iterdir()}


def test_key_files_are_0600(tmp_path: Path) -> None:
    fl, store = _booted(tmp_path)
    sym = TrustStore(profile=get_profile("cp-7942-symmetric"), intern=InternCache())
    sym.set_symmetric_key(bytes(range(1, 17)))
    sym.mic = store.mic
    fl2 = Flash(tmp_path / "sym", profile=sym.profile)
    fl2.save(sym)
    assert fl2.load().symmetric_key == bytes(range(1, 17))
    for f in (fl, fl2):
        for p in f.path.iterdir():
            if p.name in KEY_FILES:
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert stat.S_IMODE(f.path.stat().st_mode) == 0o700
    assert {"mic.key", "lsc.key"} <= set(fl.files()) and "symmetric.key" in fl2.files()


def test_erase_and_factory_reset(tmp_path: Path) -> None:
    fl, _ = _booted(tmp_path)
    assert fl.erase_trust_lists() == "Erasing CTL and ITL files"
    back = fl.load()
    assert back.ctl is None and back.itl is None and back.config is not None
    fl.factory_reset()
    assert set(fl.files()) == {"mic.der", "mic.key"}
    back = fl.load()
    assert back.mic is not None and back.lsc is None and back.config is None and back.firmware_load is None


def test_missing_directory_is_factory_fresh(tmp_path: Path) -> None:
    s = Flash(tmp_path / "none", profile=P).load()
    assert s.mic is None and not s.has_trust_list


def test_oversize_or_corrupt_files_are_not_loaded(tmp_path: Path) -> None:
    fl, _ = _booted(tmp_path)
    (fl.path / "ITLFile.tlv").write_bytes(_tl("ITL", n=4))
    small = profile_from_dict("cp-8861", {"trust_list_limit": 2048})
    back = Flash(fl.path, profile=small, intern=InternCache()).load()
    assert back.itl is None and back.ctl is not None
    (fl.path / "CTLFile.tlv").write_bytes(b"\x01\x00\x02garbage")
    (fl.path / "state.json").write_bytes(b"{not json")
    (fl.path / "config.xml").write_bytes(b"<device")
    fl2 = Flash(fl.path, profile=P, intern=InternCache())
    back = fl2.load()
    assert back.ctl is None and back.itl is not None and back.config is None
    assert any("CTLFile.tlv" in p for p in fl2.problems) and any("state.json" in p for p in fl2.problems)


@pytest.mark.parametrize("name", ["state.json", "last-boot.json"])
@pytest.mark.parametrize("content", [b"[" * 4000, b'{"a": ' * 3000, b"[" + b"9" * 5000 + b"]"],
                         ids=["deep-array", "deep-object", "long-number"])
def test_hostile_json_in_the_flash_is_a_noted_problem(tmp_path: Path, name: str, content: bytes) -> None:
    """Was a RecursionError (deep nesting) out of load / held_files / last_boot: every reader of the
    flash (phone show --flash, erase, factory-reset, set-key, predict --flash) died with a traceback."""
    fl, _ = _booted(tmp_path)
    (fl.path / name).write_bytes(content)
    fl2 = Flash(fl.path, profile=P, intern=InternCache())
    assert fl2.load().itl is not None and fl2.held_files()["itl"] is not None
    assert fl2.last_boot() is None or name != "last-boot.json"
    assert any(p.startswith(f"{name}: ") for p in fl2.problems), fl2.problems


def test_json_doc_turns_every_failure_into_a_json_error() -> None:
    """What json.loads raises on hostile text besides JSONDecodeError, with where it goes wrong."""
    import json

    from phoneemu import json_doc

    with pytest.raises(json.JSONDecodeError, match="nested too deeply") as deep:
        json_doc.loads('{"s": "[[[[[", "x": ' + "[" * 4000)
    assert deep.value.pos >= 20  # the brackets of the string do not count
    with pytest.raises(json.JSONDecodeError, match="more than 4300 digits") as digits:
        json_doc.loads("[1, " + "7" * 5000 + "]")
    assert digits.value.pos == 4
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        json_doc.loads("[")
    assert json_doc.loads('{"a": [1]}') == {"a": [1]}


@pytest.mark.parametrize("name", ["state.json", "last-boot.json", "ITLFile.tlv", "config.xml", "mic.key"])
def test_a_fifo_in_the_flash_is_not_loaded_and_never_waited_on(tmp_path: Path, name: str) -> None:
    """A FIFO named like a flash file: was an open() waiting for a writer for ever (phone show hung)."""
    import threading

    fl, _ = _booted(tmp_path)
    fifo = fl.path / name
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    loaded: list[Flash] = []

    def load() -> None:
        back = Flash(fl.path, profile=P, intern=InternCache())
        back.load()
        back.last_boot()
        loaded.append(back)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # release the reader blocked in open() so the thread ends, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(10)
        pytest.fail(f"loading a flash with a FIFO {name} waited for a writer")
    assert f"{name}: not a regular file; not loaded" in loaded[0].problems


def test_saving_over_a_fifo_replaces_it_and_never_waits(tmp_path: Path) -> None:
    """Was a hang in boot: the unchanged-file check read the FIFO before writing state.json."""
    import threading

    fl, store = _booted(tmp_path)
    fifo = fl.path / "state.json"
    fifo.unlink()
    os.mkfifo(fifo)
    t = threading.Thread(target=fl.save, args=(store,), daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(10)
        pytest.fail("saving over a FIFO waited for a writer")
    assert stat.S_ISREG(fifo.stat().st_mode) and fl.load().capf_auth_mode == 3


def test_crash_before_rename_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fl, store = _booted(tmp_path)
    old = (fl.path / "ITLFile.tlv").read_bytes()
    store.apply(rules.decide_trust_list(store, _tl("ITL", NOW + 1), kind="ITL", profile=P, now=NOW))

    def crash(*_: object) -> None:
        raise OSError("power lost between temp write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power lost"):
        fl.save(store)
    monkeypatch.undo()
    assert (fl.path / "ITLFile.tlv").read_bytes() == old
    assert not [p for p in fl.path.iterdir() if p.name.endswith(".tmp")]
    fl.save(store)
    assert (fl.path / "ITLFile.tlv").read_bytes() == _tl("ITL", NOW + 1)


def test_crash_mid_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, b"old" * 1000)
    real_write = os.write

    def half_write(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError("crash mid-write")

    monkeypatch.setattr(os, "write", half_write)
    with pytest.raises(OSError, match="mid-write"):
        atomic_write(target, b"new" * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == b"old" * 1000


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from phoneemu.phone.flash import atomic_write
    target, size = Path(sys.argv[1]), int(sys.argv[2])
    i = 0
    print("ready", flush=True)
    while True:
        atomic_write(target, bytes([65 + i % 26]) * size)
        i += 1
""")


def test_killed_writer_leaves_old_or_new_never_torn(tmp_path: Path) -> None:
    """SIGKILL a process that rewrites the file in a loop; every survivor is one whole version."""
    target, size = tmp_path / "ITLFile.tlv", 1 << 20
    atomic_write(target, b"@" * size)
    for delay in (0.05, 0.13, 0.29):
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(target), str(size)],
                                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        data = target.read_bytes()
        assert len(data) == size and data == data[:1] * size, f"torn file after kill at {delay}s"
    Flash(tmp_path, profile=P).load()  # load cleans the stale temp file
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_durable_flash_fsyncs_and_throwaway_flash_does_not(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, store = _booted(tmp_path)
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    Flash(tmp_path / "durable", profile=P).save(store)
    assert calls, "a durable flash fsyncs what it writes"
    calls.clear()
    quick = Flash(tmp_path / "quick", profile=P, durable=False)
    quick.save(store)
    assert calls == []
    back = quick.load()
    assert quick.problems == [] and back.itl is not None and store.itl is not None
    assert back.itl.raw == store.itl.raw and back.mic == store.mic
    assert stat.S_IMODE((quick.path / "mic.key").stat().st_mode) == 0o600


# --------------------------------------------------------------------------- damaged MIC / LSC files
def _damage(data: bytes, how: str) -> bytes:
    return {"truncated": data[: len(data) // 2], "empty": b"", "garbage": bytes(range(256)) * 3,
            "trailing": data + b"\x00\x00"}[how]


@pytest.mark.parametrize(("name", "how", "words"), [
    ("mic.der", "truncated", "truncated: the certificate's SEQUENCE declares"),
    ("mic.der", "garbage", "mic.der at offset 0: tag 0x00, expected 0x30"),
    ("mic.der", "trailing", "bytes after the end of the certificate"),
    ("mic.key", "truncated", "mic.key at offset 0: truncated: a PEM private key block with no END line"),
    ("mic.key", "empty", "mic.key: no PEM private key found"),
    ("mic.key", "garbage", "mic.key: no PEM private key found"),
    ("lsc.der", "empty", "lsc.der at offset 0: empty (0 bytes)"),
    ("lsc.der", "truncated", "truncated: the certificate's SEQUENCE declares"),
    ("lsc.key", "truncated", "lsc.key at offset 0: truncated"),
    ("lsc.key", "garbage", "lsc.key: no PEM private key found"),
])
def test_a_damaged_mic_or_lsc_is_noticed_at_load_naming_the_file(tmp_path: Path, name: str, how: str,
                                                                words: str) -> None:
    """A truncated or garbage certificate or key is noticed when the flash is loaded — the problem names
    the file, what is wrong and where — and that credential is not loaded: the phone runs as one without
    it (the other credential stays). Before, it loaded silently and failed only when used (e.g.
    "decrypt file failed: key: ..." naming no file)."""
    fl, store = _booted(tmp_path)
    p = fl.path / name
    p.write_bytes(_damage(p.read_bytes(), how))
    back_fl = Flash(fl.path, profile=P, intern=InternCache())
    back = back_fl.load()
    stem = name[:3]
    (problem,) = back_fl.problems
    assert problem.startswith(name) and words in problem, problem
    assert problem.endswith(f"; not loaded (the phone runs without its {stem.upper()})"), problem
    assert (back.mic, back.lsc) == ((None, store.lsc) if stem == "mic" else (store.mic, None))
    assert back.itl is not None and back.config is not None  # the rest of the flash is unaffected


def test_a_truncated_certificate_says_how_long_it_should_be(tmp_path: Path) -> None:
    fl, _ = _booted(tmp_path)
    der = (fl.path / "lsc.der").read_bytes()
    (fl.path / "lsc.der").write_bytes(der[:100])
    back_fl = Flash(fl.path, profile=P, intern=InternCache())
    back_fl.load()
    assert back_fl.problems == [f"lsc.der at offset 100: truncated: the certificate's SEQUENCE declares "
                                f"{len(der)} bytes, the file has 100; not loaded (the phone runs without "
                                "its LSC)"]


def test_a_key_of_another_certificate_or_a_missing_half_is_not_loaded(tmp_path: Path) -> None:
    """A crash between writing ``lsc.der`` and ``lsc.key`` (files are written one after the other) leaves
    a new certificate beside the old key, each whole: the pair is refused, naming both files. A half
    alone (the other removed) is named too."""
    fl, store = _booted(tmp_path)
    (fl.path / "lsc.key").write_bytes((fl.path / "mic.key").read_bytes())
    back_fl = Flash(fl.path, profile=P, intern=InternCache())
    back = back_fl.load()
    assert back_fl.problems == ["lsc.key: not the private key of the certificate in lsc.der; not loaded "
                                "(the phone runs without its LSC)"]
    assert back.lsc is None and back.mic == store.mic
    (fl.path / "mic.key").unlink()
    back_fl.load()
    assert "mic.der: no mic.key beside it; not loaded (the phone runs without its MIC)" in back_fl.problems


def test_a_damaged_mic_stays_on_the_flash_until_replaced(tmp_path: Path) -> None:
    """What the phone does with a damaged credential: it holds none (it runs without it), but the next
    save leaves its files — the good key beside a damaged certificate is the phone's identity, and no
    command may lose it — and each load says again why it is not loaded. A new pair replaces them.
    Before, the save removed the pair (``phone set-key`` or ``phone erase`` deleted the MIC key)."""
    fl, _ = _booted(tmp_path)
    key = fl.path / "mic.key"
    good = key.read_bytes()
    key.write_bytes(good[:32])  # the phone's own key, cut short (no END line)
    der = (fl.path / "mic.der").read_bytes()
    back = fl.load()
    assert back.mic is None and len(fl.problems) == 1
    fl.save(back)
    assert (fl.path / "mic.der").read_bytes() == der and key.read_bytes() == good[:32]
    assert {"lsc.der", "lsc.key"} <= set(fl.files())
    again = fl.load()
    assert again.mic is None and again.lsc is not None and len(fl.problems) == 1, fl.problems
    again.mic = Credential.of(*_ident("mic")[::-1])  # boot --mic: replaced
    fl.save(again)
    assert fl.load().mic is not None and fl.problems == []


@pytest.mark.parametrize("stem", ["lsc", "mic"])
def test_a_crash_anywhere_in_a_pair_replacement_loads_the_old_pair_or_the_new(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stem: str) -> None:
    """The save of a new LSC (or MIC) is stopped at each rename in turn (a crash: nothing after it runs).
    Loading then gives the old pair or the new one, whole, with no problem and no staged file left; a
    save made without loading first settles it too. Before, the certificate and the key were renamed
    into place one after the other: a crash between left a new certificate beside the old key and the
    phone lost its LSC."""
    import shutil

    real_replace = os.replace
    for crash_at in range(20):  # bounded: the save renames a handful of files
        fl, store = _booted(tmp_path / f"crash{crash_at}")
        old = getattr(store, stem)
        new = Credential.of(*_ident(f"{stem}-new")[::-1])
        setattr(store, stem, new)
        calls: list[object] = []

        def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str], n: int = crash_at,
                    calls: list[object] = calls) -> None:
            calls.append(dst)
            if len(calls) > n:
                raise OSError("power lost")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        try:
            fl.save(store)
            crashed = False
        except OSError:
            crashed = True
        monkeypatch.undo()
        if not crashed:
            assert crash_at >= 4, "a pair is staged (2 renames) then renamed into place (2 more)"
            break
        staged_key = fl.path / f".{stem}.key.new"
        if staged_key.exists():  # key material is never world-readable, staged or not
            assert stat.S_IMODE(staged_key.stat().st_mode) == 0o600
        shutil.copytree(fl.path, tmp_path / f"save{crash_at}")
        back_fl = Flash(fl.path, profile=P, intern=InternCache())
        back = back_fl.load()
        assert back_fl.problems == [], (crash_at, back_fl.problems)
        assert getattr(back, stem) in (old, new), crash_at
        assert getattr(back, stem) == (new if crash_at >= 3 else old), crash_at  # the commit: rename 3
        assert not [n for n in fl.files() if n.endswith(".new")], fl.files()
        other = Flash(tmp_path / f"save{crash_at}", profile=P, intern=InternCache())
        other.save(store)  # no load first: the save settles what the crash left, then replaces the pair
        again = other.load()
        assert other.problems == [] and getattr(again, stem) == new
        assert not [n for n in other.files() if n.endswith(".new")]
    else:
        pytest.fail("the save never completed")


def test_a_staged_key_beside_another_certificate_is_still_refused(tmp_path: Path) -> None:
    """Settling a committed replacement renames ``.lsc.key.new`` onto ``lsc.key``; the pair check still
    applies (a key that is not the certificate's is refused, as before)."""
    fl, store = _booted(tmp_path)
    (fl.path / ".lsc.key.new").write_bytes((fl.path / "mic.key").read_bytes())
    back_fl = Flash(fl.path, profile=P, intern=InternCache())
    back = back_fl.load()
    assert back.lsc is None and back.mic == store.mic
    assert back_fl.problems == ["lsc.key: not the private key of the certificate in lsc.der; not loaded "
                                "(the phone runs without its LSC)"]
    assert ".lsc.key.new" not in fl.files()


def test_a_flash_with_only_the_pair_files_loads_as_before(tmp_path: Path) -> None:
    """The on-flash format is unchanged: a flash written file by file (an older phoneemu: no staged
    files) loads its MIC and LSC; a save writes the same names and leaves nothing staged."""
    fl, store = _booted(tmp_path)
    assert {"mic.der", "mic.key", "lsc.der", "lsc.key"} <= set(fl.files())
    assert not [n for n in fl.files() if n.startswith(".")]
    assert stat.S_IMODE((fl.path / "lsc.key").stat().st_mode) == 0o600
    _key, cert = _ident("lsc")
    assert (fl.path / "lsc.der").read_bytes() == certs.cert_der(cert)
    older = tmp_path / "older"
    older.mkdir()
    for name in ("mic.der", "mic.key", "lsc.der", "lsc.key"):
        (older / name).write_bytes((fl.path / name).read_bytes())
    back_fl = Flash(older, profile=P, intern=InternCache())
    back = back_fl.load()
    assert back_fl.problems == [] and back.lsc == store.lsc and back.mic == store.mic


# --------------------------------------------------------------------------- config.xml <-> state.json
def _other_config(tmp_path: Path) -> TrustStore:
    """The booted store after accepting another config under another name (the next save's content)."""
    _, store = _booted(tmp_path / "other")
    xml = config_fmt.build(DeviceConfig(device_name="SEP001122334455", capf_auth_mode=1,
                                        tvs_servers=(Server(host="192.0.2.7", port=2445),)))
    store.restore(ctl=store.ctl, itl=store.itl, config=store.intern.config(xml, file="XmlDefault.cnf.xml"),
                  ctl_rule=store.ctl_rule, itl_rule=store.itl_rule, config_rule="G.4-unsigned-no-trust-list")
    return store


def test_a_crash_between_config_xml_and_state_json_restores_no_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The save writes ``config.xml`` then ``state.json``: a crash between the two leaves the new config
    beside the old state, each whole. Loading must not install the new config under the old file name
    (the phone never accepted it under that name): ``state.json`` records the SHA-256 of its config, the
    mismatch is a problem naming both files, and the phone has no config (it fetches one afresh).
    Before, the new XML came back as the config of the old file."""
    fl, store = _booted(tmp_path)
    old_name = store.config.file if store.config is not None else ""
    new = _other_config(tmp_path)
    real_write = Flash._write

    def crash_at_state(self: Flash, name: str, data: bytes | None) -> None:
        if name == "state.json":
            raise OSError("power lost before state.json")
        real_write(self, name, data)

    monkeypatch.setattr(Flash, "_write", crash_at_state)
    with pytest.raises(OSError, match="power lost"):
        fl.save(new)
    monkeypatch.undo()
    assert new.config is not None and (fl.path / "config.xml").read_bytes() == new.config.xml  # written
    back_fl = Flash(fl.path, profile=P, intern=InternCache())
    back = back_fl.load()
    assert back.config is None, "a config restored under a name the phone did not accept it under"
    (problem,) = back_fl.problems
    assert problem.startswith("config.xml: SHA-256 ") and f"state.json records for {old_name}" in problem
    assert problem.endswith("(a crash between writing the two?); not loaded"), problem
    assert back.itl is not None and back.mic is not None  # the rest of the flash is unaffected
    back_fl.save(back)  # the next save: a flash without a config, consistent again
    again_fl = Flash(fl.path, profile=P, intern=InternCache())
    assert again_fl.load().config is None and again_fl.problems == []
    assert "config.xml" not in again_fl.files()


def test_state_json_records_the_config_name_and_sha256(tmp_path: Path) -> None:
    import hashlib
    import json

    fl, store = _booted(tmp_path)
    state = json.loads((fl.path / "state.json").read_text())
    assert store.config is not None and state["config_file"] == store.config.file
    assert state["config_sha256"] == hashlib.sha256((fl.path / "config.xml").read_bytes()).hexdigest()


@pytest.mark.parametrize(("edit", "words"), [
    ({"config_sha256": None}, "state.json records no SHA-256 for it"),
    ({"config_file": None, "config_sha256": None}, "state.json names no config file for it"),
    ({"config_sha256": "00" * 32}, "is not the 0000000000000000... state.json records for"),
])
def test_a_config_state_json_does_not_vouch_for_is_not_loaded(tmp_path: Path, edit: dict[str, object],
                                                             words: str) -> None:
    """A config.xml that state.json does not name with its SHA-256 (written by an older phoneemu, or by
    a save that never reached state.json) is not installed: reported, and fetched afresh at boot."""
    import json

    fl, _ = _booted(tmp_path)
    state = json.loads((fl.path / "state.json").read_text())
    (fl.path / "state.json").write_text(json.dumps({**state, **edit}))
    back = fl.load()
    assert back.config is None and len(fl.problems) == 1
    assert fl.problems[0].startswith("config.xml: ") and words in fl.problems[0], fl.problems


def test_a_config_missing_beside_a_state_json_naming_one_is_reported(tmp_path: Path) -> None:
    fl, store = _booted(tmp_path)
    (fl.path / "config.xml").unlink()
    back = fl.load()
    assert back.config is None and store.config is not None
    assert fl.problems == [f"config.xml: missing, though state.json names {store.config.file} (a crash "
                           "between writing the two?); no config"]
