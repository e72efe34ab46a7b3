"""Audit findings: out-of-range times, non-ASCII digits, bad numeric options — each a clear,
one-line error naming where, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto import keys
from phoneemu.errors import PhoneEmuError, ScenarioError
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario.clock import ScenarioClock
from phoneemu.scenario.loader import load_text, parse_duration
from phoneemu.values import MAX_TIME, is_ascii_digits, parse_ascii_int
from tests import parser_helpers
from tests.helpers import one_line_cli_error

one_parser = parser_helpers.one_parser()  # main is called some 140 times by the module

SCENARIO = """\
name: far-future
reproduces: audit
phones:
  p: {count: 1}
steps:
  - boot: p
  - clock: {advance: ADVANCE}
  - expect: {phones: p, locked_out: false}
"""


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


# --------------------------------------------------------------------------- 3. times out of range
@pytest.mark.parametrize("argv", [
    ["boot", "--tftp", "127.0.0.1:9", "--mac", "001122334455", "--now", "99999999999999"],
    ["boot", "--tftp", "127.0.0.1:9", "--mac", "001122334455", "--now", "-99999999999"],
    ["predict", "x.tlv", "--now", "99999999999999999999999"],
    ["lab", "init", "/nonexistent/lab", "--now", "99999999999999"],
])
def test_now_out_of_range_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error(argv, capsys)
    assert "--now" in line and "9000-01-01" in line


def test_scenario_advance_beyond_the_clock_range_names_file_and_line() -> None:
    with pytest.raises(ScenarioError) as info:
        load_text(SCENARIO.replace("ADVANCE", "9000y"), "far.yaml")
    text = str(info.value)
    assert text.startswith("far.yaml:7 steps[1].clock.advance:") and "9000-01-01" in text
    with pytest.raises(ScenarioError):
        parse_duration(10**30)
    assert parse_duration("7000y") == 7000 * 365 * 86400


def test_scenario_advances_that_add_up_past_the_range_fail_at_their_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "far.yaml"
    f.write_text(SCENARIO.replace("  - clock: {advance: ADVANCE}\n",
                                  "  - clock: {advance: 5000y}\n  - clock: {advance: 5000y}\n"))
    assert main(["run", str(f)]) == 1
    out = capsys.readouterr().out
    assert f"{f}:8: clock failed" in out and "outside the supported range" in out and "internal" not in out


def test_clocks_refuse_to_leave_the_range(tmp_path: Path) -> None:
    clock = ScenarioClock(MAX_TIME - 10)
    clock.advance(10)
    with pytest.raises(PhoneEmuError, match="outside the supported range"):
        clock.advance(1)
    assert clock() == MAX_TIME
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024")
    with pytest.raises(PhoneEmuError, match="lab clock"):
        lab.advance_clock(MAX_TIME)


# --------------------------------------------------------------------------- 4. ASCII digits only
@pytest.mark.parametrize("text", ["²", "٣", "12³", "\uff11\uff12", "", "-1", "+1", " 1", "1_0"])
def test_non_ascii_or_signed_digits_are_not_digits(text: str) -> None:
    assert not is_ascii_digits(text) and parse_ascii_int(text) is None


def test_ascii_digits() -> None:
    assert is_ascii_digits("0123456789") and parse_ascii_int("0069") == 69
    assert parse_ascii_int("1" * 21) is None


@pytest.mark.parametrize("port", ["²", "٦٩", "\uff16\uff19"])
@pytest.mark.parametrize("command", [["boot", "--mac", "001122334455"], ["fleet", "boot", "--count", "1"]])
def test_tftp_port_with_non_ascii_digits_is_refused(command: list[str], port: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--tftp", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "port must be 1..65535" in err[0], err


def test_duration_with_non_ascii_digits_is_refused() -> None:
    for text in ("٣d", "²y", "\uff11\uff10m"):
        with pytest.raises(ScenarioError, match="expected a duration"):
            parse_duration(text)


# --------------------------------------------------------------------------- 7. numeric options
BOOT = ["boot", "--tftp", "127.0.0.1:9", "--mac", "001122334455"]
FLEET = ["fleet", "boot", "--tftp", "127.0.0.1:9"]
FUZZ = ["fuzz", "--format", "itl", "--target", "phoneemu", "--out", "/nonexistent/fz"]


@pytest.mark.parametrize("argv", [
    [*BOOT, "--timeout", "-1"], [*BOOT, "--timeout", "nan"], [*BOOT, "--timeout", "0"],
    [*BOOT, "--capf-retry-delay", "-5"], [*BOOT, "--http-port", "70000"],
    [*FLEET, "--count", "-5"], [*FLEET, "--count", "0"], [*FLEET, "--count", "1", "--timeout", "inf"],
    [*FLEET, "--count", "1", "--concurrency", "0"], [*FLEET, "--count", "1", "--retries", "-1"],
    [*FLEET, "--count", "1", "--tvs-timeout", "-0.5"], [*FLEET, "--count", "1", "--max-time", "nan"],
    [*FLEET, "--count", "1", "--shards", "-1"],
    [*FUZZ, "--runs", "-1"], [*FUZZ, "--time", "nan"], [*FUZZ, "--timeout", "-1"],
    [*FUZZ, "--hang-after", "0"], [*FUZZ, "--runs", "1", "--port", "70000"],
    ["inspect", "--limit", "-3", "x.tlv"], ["inspect", "--limit", "\u0663", "x.tlv"],
    ["lab", "serve", "--dir", "/nonexistent", "--tftp-port", "\u0666\u0669"],
    # were int(): non-ASCII digits (and "1_0") taken, negatives refused only after loading the lab
    ["lab", "add-certs", "/nonexistent", "--count", "\u0663"],
    ["lab", "remove-certs", "/nonexistent", "--count", "-1"],
    ["lab", "init", "/proc/phoneemu-none/lab", "--nodes", "\uff12"],
    ["lab", "init", "/proc/phoneemu-none/lab", "--seed", "1_0"],
    ["lab", "init", "/proc/phoneemu-none/lab", "--itlrecovery-years", "0"],
    ["lab", "upgraded", "/nonexistent", "on", "--years", "-1"],
    ["lab", "tamper", "/nonexistent", "ITLFile.tlv", "--offset", "\u0663"],
    ["lab", "tvs-ttl", "/nonexistent", "-5"],
    [*FUZZ, "--runs", "1", "--seed", "-1"], ["run", "scenarios", "-j", "-1"],
], ids=lambda a: " ".join(a[:2] + a[-2:]))
def test_bad_numbers_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error(argv, capsys)
    assert "error: argument --" in line or "error: argument SECONDS" in line or "-j/--jobs" in line, line


def test_fuzz_target_cmd_with_bad_quoting_is_a_clean_error(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["fuzz", "--format", "itl", "--target-cmd", "cat '{}", "--runs", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--target-cmd" in err[0] and "quotation" in err[0], err


def test_fleet_plot_suffix_is_checked_before_booting(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    rc = main([*FLEET, "--count", "1", "--shards", "0", "--timeout", "0.05", "--retries", "0",
               "--plot", str(tmp_path / "x.txt")])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert rc == 2 and "fleet:" not in captured.err.replace("phoneemu fleet:", ""), captured.err
    assert len(err) == 1 and ".txt" in err[0] and "png" in err[0], err


def test_inspect_with_a_huge_limit_reads_only_the_file(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--limit 10**17 used to make read() allocate a buffer of that size (MemoryError)."""
    f = tmp_path / "x.xml"
    f.write_bytes(b"<device/>")
    assert main(["inspect", "--limit", str(10**17), str(f)]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- 8. corrupt phone.json
@pytest.mark.parametrize(("content", "words"), [
    (b'{"mac": "0011', "line 1 column"),
    (b"[1, 2]", "expected a JSON object"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 4000, "nested too deeply"),  # was a RecursionError traceback
    (b'{"mac": "001122334455", "profile": ' + b"[" * 4000, "nested too deeply"),
    (b'{"mac": "001122334455", "profile": ["cp-8861"]}', 'profile ["cp-8861"] is none of'),  # a TypeError
    (b'{"mac": "001122334455", "profile": {"a": 1}}', 'profile {"a": 1} is none of'),
    (b'{"mac": "001122334455", "profile": null}', "profile null is none of"),
    (b'{"mac": ["001122334455"]}', "mac: MAC must be text"),
], ids=["truncated", "list", "utf16", "deep", "deep-profile", "profile-list", "profile-object",
        "profile-null", "mac-list"])
def test_corrupt_phone_json_says_corrupt_and_where(tmp_path: Path, content: bytes, words: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "phone.json").write_bytes(content)
    assert main(["phone", "show", "--flash", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "phone.json" in err[0] and "corrupt" in err[0] and words in err[0], err
    assert "no phone.json" not in err[0]


def test_missing_phone_json_is_still_fine(tmp_path: Path) -> None:
    from phoneemu.phone.phone import read_phone_file

    assert read_phone_file(tmp_path) == {} and read_phone_file(tmp_path / "nope") == {}


# --------------------------------------------------------------------------- 9. command-line sweep
# Each case of a bad-input sweep of every command and option that printed a traceback, took bad
# input as a failed boot (exit 1), or silently did something else than asked.
def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    """``phoneemu ARGV``'s one-line error (:func:`tests.helpers.one_line_cli_error`), holding ``words``."""
    line = one_line_cli_error(argv, capsys)
    assert all(w in line for w in words), line
    return line


@pytest.fixture(scope="module")
def sweep_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep") / "lab"
    LabCluster.init(root, seed=5, key_spec="rsa1024").add_phone("001122334455")
    return root


@pytest.fixture
def lab_copy(sweep_lab: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(sweep_lab, tmp_path / "lab"))


@pytest.mark.parametrize("name", ["/", ".", ""])
def test_an_output_path_without_a_name_is_a_folder_not_a_traceback(
        name: str, lab_copy: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``lab itlrecovery DIR export .`` raised ValueError ("has an empty name") out of AtomicFile."""
    from phoneemu.files import atomic_write

    monkeypatch.chdir(lab_copy.parent)
    with pytest.raises(IsADirectoryError) as info:
        atomic_write(name, b"x")
    assert info.value.filename == str(Path(name)) and "cannot write" in str(info.value)
    if name == ".":
        _one_line(["lab", "itlrecovery", str(lab_copy), "export", "."], capsys, ".", "Is a directory")
        assert not any(p.name.startswith(".") and "tmp" in p.name for p in lab_copy.parent.iterdir())


@pytest.mark.parametrize("capture", [".", "/"])
def test_wireshark_capture_that_is_a_folder(capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``wireshark . --print`` raised ValueError from Path.with_suffix."""
    _one_line(["wireshark", capture, "--print"], capsys, "capture", "is a folder")


def test_lab_init_on_a_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    _one_line(["lab", "init", str(f), "--seed", "1"], capsys, str(f), "is a file, not a folder")
    assert f.read_text() == "mine\n"


@pytest.mark.parametrize(("option", "value", "word"), [
    ("--name", "a b", "'a b'"), ("--host", "[::1]", "'[::1]'"), ("--key", "rsa9", "RSA size 9"),
    ("--load", "ü", "'ü'"), ("--https-key", "x", "'x'"),
])
def test_lab_init_refusal_is_one_line_without_the_progress_line(
        option: str, value: str, word: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The seeded-keys progress line came before the options were checked: two lines for one error."""
    _one_line(["lab", "init", str(tmp_path / "lab"), "--seed", "1", option, value], capsys, word)
    assert not (tmp_path / "lab").exists()


@pytest.mark.parametrize(("tftp", "words"), [
    ("host name:69", "'host name' is neither"), ("ü:69", "'ü' is neither"), ("[::zz]:69", "not an IPv6"),
    ("[127.0.0.1]:69", "not an IPv6"), ("a..b", "'a..b' is neither"), ("a-:69", "'a-' is neither"),
])
@pytest.mark.parametrize("command", [["boot", "--mac", "001122334455"], ["fleet", "boot", "--count", "1"]])
def test_tftp_host_that_is_no_host_is_bad_input(command: list[str], tftp: str, words: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Booted (exit 1, "cannot resolve" after every retry) instead of refusing the option (exit 2)."""
    _one_line([*command, "--tftp", tftp], capsys, "--tftp", words)


@pytest.mark.parametrize("text", ["127.0.0.1:69", "[::1]:69", "::1", "[::1]", "localhost",
                                  "tftp-1.example.com.:6969", "fe80::1%eth0", "cucm_pub:69"])
def test_good_tftp_hosts_still_parse(text: str) -> None:
    from phoneemu.values import parse_host_port

    host, port = parse_host_port(text)
    assert host and 0 < port < 65536


@pytest.mark.parametrize(("argv", "words"), [
    (["--mac", ""], ("mac", "'' is not a MAC")),
    (["--mac", "001122334455", "--profile", ""], ("profile", "unknown phone profile ''")),
    (["--mac", "001122334455", "--key", ""], ("empty key",)),
])
def test_boot_empty_values_are_not_defaults(argv: list[str], words: tuple[str, ...], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``--mac ""`` took the flash's MAC, ``--profile ""`` the default, ``--key ""`` cleared the key:
    an unset shell variable must not boot another phone than asked."""
    (tmp_path / "phone.json").write_text('{"mac": "001122334455", "profile": "cp-8861"}')
    _one_line(["boot", "--tftp", "127.0.0.1:9", "--flash", str(tmp_path), "--timeout", "0.1", *argv],
              capsys, *words)


@pytest.mark.parametrize("key", ["", " ", "00"])
def test_phone_set_key_empty_or_short_zero_does_not_clear(key: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "phone.json").write_text('{"mac": "0A0000000009", "profile": "cp-7942-symmetric"}')
    good = "00112233445566778899AABBCCDDEEFF"
    assert main(["phone", "set-key", "--flash", str(tmp_path), good]) == 0
    capsys.readouterr()
    _one_line(["phone", "set-key", "--flash", str(tmp_path), key], capsys, "symmetric_key")
    assert main(["phone", "show", "--flash", str(tmp_path), "--json"]) == 0
    assert "Manual config key: not set" not in capsys.readouterr().out
    assert (tmp_path / "symmetric.key").read_bytes() == bytes.fromhex(good)
    assert main(["phone", "set-key", "--flash", str(tmp_path), "0" * 32]) == 0  # zeros still clear it


def test_phone_empty_profile_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line(["phone", "show", "--flash", str(tmp_path), "--profile", ""], capsys, "profile", "''")


def test_itl_reset_localkey_with_key_file_is_refused(lab_copy: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--key-file was silently ignored with localkey: the key the user named was not restored."""
    before = (lab_copy / "cluster.json").read_bytes()
    _one_line(["lab", "itl-reset", str(lab_copy), "localkey", "--key-file", str(tmp_path / "k.pem")],
              capsys, "--key-file is for remotekey")
    assert (lab_copy / "cluster.json").read_bytes() == before


@pytest.mark.parametrize(("extra", "option"), [
    (["--crash-exit", "1"], "--crash-exit"), (["--mac", "zz"], "--mac"),
    (["--serve-root", "/nonexistent"], "--serve-root"), (["--http-port", "6970"], "--http-port"),
])
def test_fuzz_option_of_another_mode_is_refused(extra: list[str], option: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Ignored before: the run was not the one asked for (as --reject-exc already was)."""
    out = str(tmp_path / "fz")
    typed = ["fuzz", "--format", "itl", "--target", "phoneemu", "--runs", "1", "--out", out, *extra]
    _one_line(typed, capsys, f"{option} is for")
    assert not (tmp_path / "fz").exists()


@pytest.mark.parametrize("path", ["", " "])
def test_run_with_an_empty_path_is_refused(path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``run ""`` was ``run .``: every *.yaml below the current folder (an unset variable ran them all)."""
    (tmp_path / "other.yaml").write_text("not: a scenario\n")
    monkeypatch.chdir(tmp_path)
    for argv in (["run", path], ["run", "--list", path]):
        _one_line(argv, capsys, f"{path!r}: empty path")


@pytest.mark.parametrize(("value", "shown"), [
    ("[1]", "got [1]"), ("{a: 2}", "got {'a': 2}"), ("[1, {a: [x]}]", "got [1, {'a': ['x']}]"),
])
def test_scenario_type_errors_show_the_value_not_a_node_repr(value: str, shown: str) -> None:
    """``count: [1]`` said ``got [<phoneemu.scenario.loader._Node object at 0x...>]``."""
    text = (f"name: x\nreproduces: y\nphones:\n  p: {{count: {value}}}\nsteps:\n  - boot: p\n"
            "  - expect: {itl: installed}\n")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    assert str(info.value).endswith(shown) and "_Node" not in str(info.value), str(info.value)


@pytest.mark.parametrize("argv", [
    ["inspect", "@VECTOR", "--cert", "@PEM"],
    ["replay", "@CAPTURE", "--mac", "0A0000000001", "--tvs-cert", "@PEM"],
    ["predict", "--installed-itl", "@VECTOR", "@VECTOR", "--image-signer", "@PEM"],
], ids=lambda a: a[0])
def test_a_pem_without_a_certificate_is_named_once(argv: list[str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Said 'F: F: no certificate in PEM' (the path in the message and again as the error's path)."""
    vector = next(p for p in sorted((Path(__file__).parents[1] / "vectors").iterdir()) if p.suffix == ".tlv")
    pem = tmp_path / "empty.pem"
    pem.write_text("not a certificate\n")
    capture = Path(__file__).parents[2] / "captures" / "first-boot-trusts-first-itl.pcap"
    where = {"@PEM": str(pem), "@VECTOR": str(vector), "@CAPTURE": str(capture)}
    argv = [where.get(a, a) for a in argv]
    line = _one_line(argv, capsys, "no certificate in PEM")
    assert line.count(str(pem)) == 1, line


@pytest.mark.parametrize("count", ["1000000000000", "100001"])
def test_fleet_count_beyond_the_cap_is_a_usage_error(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --count 1000000000000`` printed its banner, then died of MemoryError (a traceback)."""
    line = _usage_error(["fleet", "boot", "--tftp", "127.0.0.1:9", "--count", count], capsys)
    assert "--count" in line and "1..100000" in line, line


@pytest.mark.parametrize("argv", [["lab", "show", "@F"], ["lab", "ctl-update", "@F"],
                                  ["lab", "exchange", "@LAB", "@F"]], ids=lambda a: a[1])
def test_a_file_given_as_lab_dir_is_named_as_a_file(argv: list[str], lab_copy: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Said 'F/cluster.json: Not a directory'."""
    f = tmp_path / "ITLFile.tlv"
    f.write_bytes(b"\x01\x00\x02")
    argv = [str(f) if a == "@F" else str(lab_copy) if a == "@LAB" else a for a in argv]
    line = _one_line(argv, capsys, f"{f}: is a file, not a lab cluster folder")
    assert "cluster.json" not in line, line


def test_inspect_key_is_checked_even_on_a_file_that_is_not_encrypted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``inspect FILE --key K``: a missing or damaged K is a one-line error naming --key (it was
    ignored on a file that is not encrypted); a good K there is a note that it was not used."""
    itl = str(Path(__file__).resolve().parents[1] / "vectors" / "itl_lab.tlv")
    assert main(["inspect", itl, "--key", str(tmp_path / "missing.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--key {tmp_path / 'missing.pem'}: No such file" in err
    key = keys.private_key_pem(keys.generate_key(keys.KeySpec.parse("ec-p256")))
    cut = tmp_path / "cut.pem"
    cut.write_bytes(b"\n".join(key.splitlines()[:2]))
    assert main(["inspect", itl, "--key", str(cut)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--key" in err and "has no END line" in err
    good = tmp_path / "good.pem"
    good.write_bytes(key)
    assert main(["inspect", itl, "--key", str(good), "--json"]) == 0
    assert "key good.pem not used: an ITL is not encrypted" in json.loads(capsys.readouterr().out)["notes"]


@pytest.mark.parametrize("option", [["--target", "phoneemu", "--runs", "5", "--out"], ["--export-corpus"]])
def test_fuzz_output_folder_that_is_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     option: list[str]) -> None:
    """``fuzz --out FILE`` said only "File exists"."""
    f = tmp_path / "afile"
    f.write_bytes(b"x")
    assert main(["fuzz", "--format", "itl", *option, str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option[-1]}: {f} exists and is not a folder" in err


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_fuzz_serve_root_that_is_not_a_folder_is_refused(kind: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``fuzz --serve --serve-root FILE`` served (exit 0) as if the phone's other names were all missing:
    a file or a missing folder is a one-line usage error naming the option and the path, nothing served."""
    root = tmp_path / "root"
    if kind == "file":
        root.write_bytes(b"x")
    out = tmp_path / "fz"
    typed = ["fuzz", "--format", "itl", "--serve", "--port", "0", "--runs", "1", "--time", "1", "-q",
             "--out", str(out), "--serve-root", str(root)]
    said = "is not a folder" if kind == "file" else "no such folder"
    _one_line(typed, capsys, f"--serve-root: {root}", said)
    assert not out.exists()


def _cannot_be_folders(tmp_path: Path) -> list[Path]:
    """Folders that cannot be created: below a file (everywhere), and in /proc (Linux, even as root)."""
    f = tmp_path / "afile"
    f.write_bytes(b"x")
    return [f / "sub", *([Path("/proc/phoneemu-x")] if Path("/proc/self").is_dir() else [])]


@pytest.mark.parametrize("argv", [
    ["--target", "phoneemu", "--runs", "1", "--out", "@DIR"],
    ["--target-cmd", "true {}", "--runs", "1", "--out", "@DIR"],
    ["--serve", "--port", "0", "--runs", "1", "--time", "1", "--out", "@DIR"],
    ["--target", "phoneemu", "--regenerate", "@DIR"],
    ["--export-corpus", "@DIR"],
], ids=lambda a: f"{a[0]}-{a[-2]}")
def test_fuzz_output_folder_that_cannot_be_created_names_the_option(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fuzz --out /proc/x`` said "phoneemu fuzz: /proc/x: No such file or directory" (or named a file
    inside it): the option is named too, exit 2, one line, no traceback."""
    option = argv[-2]
    for folder in _cannot_be_folders(tmp_path):
        typed = ["fuzz", "--format", "itl", "-q", *[str(folder) if a == "@DIR" else a for a in argv]]
        _one_line(typed, capsys, f"{option}: {folder}: cannot create the folder or write in it")



@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_fuzz_seed_dir_that_holds_no_seeds_is_said_once(kind: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``fuzz --seed-dir X`` with a bad X said the option twice (``--seed-dir: --seed-dir X: not a folder``),
    and "not a folder" for one that does not exist: one line, the option once, exit 2, nothing run."""
    seeds = tmp_path / "seeds"
    if kind == "file":
        seeds.write_bytes(b"x")
    elif kind == "empty":
        seeds.mkdir()
    out = tmp_path / "fz"
    typed = ["fuzz", "--format", "itl", "--target", "phoneemu", "--runs", "1", "-q", "--out", str(out),
             "--seed-dir", str(seeds)]
    said = {"missing": "no such folder", "file": "not a folder", "empty": "holds no files"}[kind]
    line = _one_line(typed, capsys)
    assert line == f"phoneemu fuzz: --seed-dir {seeds}: {said}", line
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["--target", "phoneemu", "--runs", "1", "--out", "@DIR", "--resign-ratio", "2"],
    ["--target", "phoneemu", "--runs", "1"],
    ["--target-cmd", "true {}", "--runs", "1", "--out", "@DIR", "--crash-exit", "999"],
    ["--target", "phoneemu", "--runs", "1", "--out", "@DIR", "--crash-exit", "1"],
    ["--target", "phoneemu", "--runs", "1", "--out", "@DIR", "--reject-exc", "ValueError"],
    ["--target", "phoneemu", "--runs", "1", "--out", "@DIR", "--timeout", "3"],
    ["--target-cmd", "true {}", "--runs", "1", "--out", "@DIR", "--hang-after", "3"],
    ["--target-cmd", "true {}", "--runs", "1", "--out", "@DIR", "--no-round-trip"],
    ["--serve", "--runs", "1", "--out", "@DIR", "--no-minimize"],
    ["--target", "phoneemu", "--runs", "1", "--out", "@DIR", "--mac", "001122334455"],
    ["--target", "phoneemu", "--regenerate", "@DIR", "--out", "@DIR"],
    ["--target", "phoneemu", "--replay", "@DIR", "--out", "@DIR"],
], ids=["resign-ratio", "no-out", "crash-exit-value", "crash-exit-mode", "reject-exc", "timeout",
        "hang-after", "no-round-trip", "no-minimize", "mac", "regenerate", "replay"])
def test_fuzz_option_errors_name_the_option_once(argv: list[str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Each was ``--X: --X ...`` (``phoneemu fuzz: --resign-ratio: --resign-ratio must be within 0..1``):
    the message opens with its option, so the option is not said again before it."""
    typed = ["fuzz", "--format", "itl", "-q", *[str(tmp_path / "d") if a == "@DIR" else a for a in argv]]
    line = _one_line(typed, capsys)
    head = line.removeprefix("phoneemu fuzz: ")
    option = head.split(" ", 1)[0].rstrip(":")
    assert option.startswith("--") and not head.startswith(f"{option}: {option}"), line
