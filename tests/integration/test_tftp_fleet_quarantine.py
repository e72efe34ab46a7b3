"""``fleet boot --tftp-quarantine S``: how long the fleet's TFTP client pool holds a socket it does not
reuse (tftp_client module docstring), validated at parse time."""

from __future__ import annotations

from typing import Any

import pytest

from phoneemu.fleet import engine
from phoneemu.net.tftp_client import QUARANTINE_S, TftpClientPool

HOST = "127.0.0.1"


def _fleet_pools_quarantine(monkeypatch: pytest.MonkeyPatch, *options: str) -> list[float]:
    """``quarantine_s`` of each pool a one-phone fleet (in this process) makes with ``options``."""
    from phoneemu.cli import main

    made: list[float] = []

    class RecordingPool(TftpClientPool):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self.quarantine_s)

    monkeypatch.setattr(engine, "TftpClientPool", RecordingPool)
    # port 9 (discard): nothing listens, every request is unreachable at once; the boot fails (exit 1)
    assert main(["fleet", "boot", "--count", "1", "--tftp", f"{HOST}:9", "--no-http", "--shards", "0",
                 "--timeout", "0.05", "--retries", "0", "-q", *options]) == 1
    return made


def test_fleet_boot_tftp_quarantine_reaches_the_pool(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Old code: no such option (a usage error); the pool always held sockets QUARANTINE_S seconds."""
    assert _fleet_pools_quarantine(monkeypatch, "--tftp-quarantine", "30") == [30.0]
    assert _fleet_pools_quarantine(monkeypatch, "--tftp-quarantine", "0") == [0.0]
    assert _fleet_pools_quarantine(monkeypatch) == [QUARANTINE_S]
    capsys.readouterr()


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "six"])
def test_fleet_boot_refuses_a_tftp_quarantine_that_is_not_seconds(value: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["fleet", "boot", "--count", "1", "--tftp", f"{HOST}:9", "--tftp-quarantine", value])
    assert exit_.value.code == 2
    assert "argument --tftp-quarantine: " in capsys.readouterr().err


def test_fleet_spec_refuses_a_tftp_quarantine_that_is_not_seconds() -> None:
    from phoneemu.errors import EncodeError
    from phoneemu.phone.boot import BootTarget

    for bad in (-1.0, float("nan")):
        with pytest.raises(EncodeError, match="tftp_quarantine_s"):
            engine.FleetSpec(target=BootTarget(host=HOST), count=1, tftp_quarantine_s=bad)
