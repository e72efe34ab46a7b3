"""CLI messages as a user reads them (usability audit): errors name the option typed (not a field name)
and the whole command, hints carry real values and every near choice, no Python internals (``None``,
``[Errno 111]``, a list's brackets) reach the terminal, and a long usage does not bury a usage error."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import build_parser, main
from phoneemu.errors import TransportError
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.http import http_get
from tests.helpers import boot_into_flash, copy_cluster, lab_template, serve_in_thread

MAC = "0A00000000F1"
template = lab_template("cliaudit", seed=43, phones={MAC: {}})


def _err(capsys: pytest.CaptureFixture[str], argv: list[str], rc: int = 2) -> str:
    assert main(argv) == rc, argv
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------ 1. the option, not the field name
def test_an_error_about_an_option_names_the_option_and_the_whole_command(
        cluster: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["lab", "phone", "add", str(cluster.root), "--mac", "001122334466",
                        "--encrypt", "symmetric"])
    assert err == ("phoneemu lab phone add: --symmetric-key HEX: symmetric encryption needs a key "
                   "(32 or 64 hex digits)\n")
    err = _err(capsys, ["lab", "phone", "add", str(cluster.root), "--mac", "001122334466",
                        "--capf", "install"])
    assert err.startswith("phoneemu lab phone add: --capf install: say how the phone authenticates: "), err
    assert "auth_mode" not in err
    err = _err(capsys, ["lab", "capf", str(cluster.root), "install", "--mac", MAC])
    assert err.startswith("phoneemu lab capf: CAPF install: say how the phone authenticates: "), err


def test_a_bad_mac_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["boot", "--tftp", "127.0.0.1:9", "--mac", "00112233445"])
    assert err.startswith("phoneemu boot: --mac MAC: '00112233445' is not a MAC address: "), err


def test_lab_serve_without_a_folder_names_no_field(capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["lab", "serve"])
    assert err == ("phoneemu lab serve: which lab cluster? give its folder: phoneemu lab serve DIR "
                   "(or --dir DIR)\n")


def test_a_missing_positional_file_is_named_by_its_metavar(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "new.tlv"
    err = _err(capsys, ["predict", "--installed-itl", str(tmp_path / "x"), str(missing)])
    assert err == f"phoneemu predict: NEW_FILE: {missing}: no such file\n"


def test_regenerate_lists_what_it_takes_in_words(cluster: LabCluster,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["lab", "regenerate", str(cluster.root), "foo"])
    assert err.startswith("phoneemu lab regenerate: CERT: cannot regenerate 'foo': one of callmanager, capf, "
                          "itlrecovery or tvs ("), err
    assert "[" not in err and "tvs-N" in err
    cluster.add_node()
    with pytest.raises(Exception, match=r"cannot regenerate 'tvs-3': .* or another node's callmanager-N or "
                                        r"tvs-N \(N = 2, e\.g\. tvs-2\)"):
        cluster.regenerate("tvs-3")


# ------------------------------------------------------------------ 2. which ITL the phone holds
@pytest.fixture
def served(template: Path, tmp_path: Path) -> Iterator[tuple[LabCluster, str]]:
    c = copy_cluster(template, tmp_path)
    ports, stop = serve_in_thread(c)
    try:
        yield c, f"127.0.0.1:{ports['tvs']}"
    finally:
        stop()


def test_tvs_with_a_flash_names_the_flash_itl_not_itl_option(served: tuple[LabCluster, str], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    c, _tvs = served
    flash = tmp_path / "ph"
    assert boot_into_flash(c, flash, MAC).ok
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(c.files()["ITLFile.tlv"])
    assert main(["tvs", str(itl), "--flash", str(flash)]) == 0
    out = capsys.readouterr().out
    assert f"a phone holding the ITL of --flash {flash} talks to it" in out
    assert "--itl" not in out


# ------------------------------------------------------------------ 3. no Python internals
def test_seed_none_is_said_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = tmp_path / "L"
    assert main(["lab", "init", str(lab), "--key", "rsa1024"]) == 0
    out = capsys.readouterr().out
    assert "(no seed: random keys, 1 node, " in out and "None" not in out
    assert main(["lab", "show", str(lab)]) == 0
    seed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("seed:"))
    assert seed.split(":", 1)[1].strip() == "none (random keys)"


def test_a_refused_http_connection_is_said_in_words() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as info:
        asyncio.run(http_get("127.0.0.1", port, "ITLFile.tlv", timeout=5))
    assert info.value.kind == "unreachable"
    assert f"cannot connect: connection refused by 127.0.0.1:{port}" in str(info.value)
    assert "Errno" not in str(info.value) and "Connect call failed" not in str(info.value)


def test_predict_fleet_summary_counts_in_singular() -> None:
    from phoneemu.commands.predict import _fleet_text

    doc = {"source": "F", "predicted": 1, "skipped": 1, "tvs": "reachable", "outcomes":
           {"accepted": 1, "locked out": 0}, "by_model": {}, "rules": [], "ways_out": [], "fleet_flash": None,
           "sip_until_reset": {"count": 0}, "notes": [], "phone_notes": [], "not_given": [],
           "skipped_entries": [{"entry": "junk", "reason": "not a flash"}]}
    first = _fleet_text(doc).splitlines()[0]
    assert first == "fleet F: 1 phone predicted, 1 entry skipped; TVS reachable"


# ------------------------------------------------------------------ 4. hints
def test_fleet_lab_hint_gives_the_real_count(cluster: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["fleet", "boot", "--tftp", "127.0.0.1:9", "-q", "--lab", str(cluster.root)]
    err = _err(capsys, [*common, "--count", "4", "--mac-start", "0A00000000F0"])  # F0, F2, F3 missing
    assert (f"3 of the 4 phones are not in the lab (0A00000000F0, 0A00000000F2, 0A00000000F3); add them with "
            f"'phoneemu lab phone add {cluster.root} --mac 0A00000000F0' and 'phoneemu lab phone add "
            f"{cluster.root} --mac 0A00000000F2 --count 2'") in err
    assert "--count N" not in err


def test_a_mac_option_takes_cucms_device_name(cluster: LabCluster,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.commands._argtypes import mac_option

    assert mac_option("SEP001122334455") == "001122334455"
    assert mac_option("sep00:11:22:33:44:55") == "00:11:22:33:44:55"
    assert mac_option("SEP0011") == "SEP0011"  # not a MAC after SEP: left for the command to refuse
    args = build_parser().parse_args(["boot", "--tftp", "127.0.0.1:9", "--mac", "SEP001122334455"])
    assert args.mac == "001122334455"
    args = build_parser().parse_args(["fleet", "boot", "--count", "2", "--mac-start", "SEP0A0000000000"])
    assert args.mac_start == "0A0000000000"
    for argv in (["replay", "x.pcap", "--mac", "SEP001122334455"],
                 ["fuzz", "--format", "itl", "--serve", "--out", "o", "--mac", "SEP001122334455"]):
        assert build_parser().parse_args(argv).mac == "001122334455"
    assert main(["lab", "phone", "add", str(cluster.root), "--mac", "SEP001122334466"]) == 0
    assert "001122334466" in LabCluster.open(cluster.root).state.phones
    capsys.readouterr()
    err = _err(capsys, ["boot", "--tftp", "127.0.0.1:9", "--mac", "SEP0011"])
    assert "'SEP0011' is not a MAC address" in err


def test_init_on_a_lab_names_it_once_and_says_what_to_do(cluster: LabCluster,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["lab", "init", str(cluster.root)])
    assert err.count(str(cluster.root)) == 2  # where, and the command to run on it: not "L: L already ..."
    assert err.startswith(f"phoneemu lab init: {cluster.root}: already holds a lab cluster: give a new or "
                          "empty folder"), err
    assert f"phoneemu lab show {cluster.root}" in err


def test_tamper_of_an_unknown_file_lists_the_served_ones(cluster: LabCluster,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["lab", "tamper", str(cluster.root), "nofile.tlv"])
    assert err.startswith("phoneemu lab tamper: FILE: no served file 'nofile.tlv'; the served files: "), err
    assert "ITLFile.tlv" in err and f"more (phoneemu lab show {cluster.root} --files lists them)" in err


def test_every_choice_at_the_best_distance_is_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "servce"])
    assert "(did you mean serve or service?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lab", "regnerate", "/tmp/x"])
    assert capsys.readouterr().err.rstrip().endswith("(did you mean regenerate?)")


# ------------------------------------------------------------------ 5. a long usage
def test_a_long_usage_is_one_line_before_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fleet", "boot", "--count", "0", "--tftp", "127.0.0.1:9"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "usage: phoneemu fleet boot [options] (see phoneemu fleet boot --help)\n"
        "phoneemu fleet boot: error: argument --count: 0 is outside 1..100000\n")
    with pytest.raises(SystemExit):  # a short usage is shown whole, as argparse does
        main(["lab", "show", "/tmp/x", "--bogus"])
    err = capsys.readouterr().err
    assert err.startswith("usage: phoneemu lab show [-h] [--itl]") and "[options]" not in err

