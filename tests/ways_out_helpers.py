"""Labs where a migration's phones and a lab's own phones are locked out by a TVS they cannot reach (tasks
W and W2, s39): shared by the tests of the ways out of bringing TVS back, in text and in JUnit."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, run, serve_in_thread

NOW = 1_780_000_000
MACS = ["0A0000003901", "0A0000003902"]


def migration_labs(where: Path, *, hosts: tuple[str, str], seeds: tuple[int, int] = (58, 59)) -> Path:
    """In ``where``: ``old`` and ``new`` on their own loopback addresses (``hosts``: each lab's configs name
    its own TVS there, port 2445), each with the phones :data:`MACS`; ``moved``: flashes booted on old
    (their config names old's TVS, which nothing serves), ``stayed``: booted on new, whose ITLRecovery is
    then regenerated and its TVS down (``*-before``: copies as they were). Then, against new served (TVS
    down), each fleet's first phone booted with a capture (``moved.pcap``, ``stayed.pcap``), then each
    fleet (``moved.txt``, ``stayed.txt``: ``fleet boot``'s output; ``moved.xml``, ``stayed.xml``: its
    ``--junit``). Give each test module its own ``hosts``: a capture holds whatever goes to them."""
    old_host, new_host = hosts
    old = LabCluster.init(where / "old", seed=seeds[0], key_spec="rsa1024", now=NOW, name="old",
                          host=old_host)
    new = LabCluster.init(where / "new", seed=seeds[1], key_spec="rsa1024", now=NOW, name="new",
                          host=new_host)
    for lab in (old, new):
        lab.add_phones(MACS, now=NOW)
    run(boot_offline_into(where / "moved", old, MACS, now=NOW))
    run(boot_offline_into(where / "stayed", new, MACS, now=NOW))
    new.regenerate("itlrecovery", now=NOW)
    for fleet in ("moved", "stayed"):
        shutil.copytree(where / fleet, where / f"{fleet}-before")
    _boot_against(LabCluster.open(new.root), where, new_host)
    return where


def _boot_against(new: LabCluster, where: Path, host: str) -> None:
    """Each fleet's first phone booted on ``new`` with a capture, then each whole fleet (output kept)."""
    ports, stop = serve_in_thread(new, host=host)
    try:
        # as lab serve records them; its TVS recorded where the stayed phones ask it, nothing listening there
        new.set_ports(tftp=ports["tftp"], http=ports["http"], tvs=2445, now=NOW)
        for fleet in ("moved", "stayed"):
            assert main(["boot", "--lab", str(new.root), "--flash", str(where / fleet / MACS[0]), "--now",
                         str(NOW), "--capture", str(where / f"{fleet}.pcap")]) == 1
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                status = main(["fleet", "boot", "--lab", str(new.root), "--flash", str(where / fleet),
                               "--shards", "0", "--junit", str(where / f"{fleet}.xml")])
            assert status == 1, out.getvalue()
            (where / f"{fleet}.txt").write_text(out.getvalue())
    finally:
        stop()


@contextlib.contextmanager
def last_boot_without(flash: Path, key: str) -> Iterator[None]:
    """``flash``'s last-boot.json as an older phoneemu wrote it: without ``key`` (put back after)."""
    last = flash / "last-boot.json"
    kept = last.read_bytes()
    older = json.loads(kept)
    del older[key]
    last.write_text(json.dumps(older))
    try:
        yield
    finally:
        last.write_bytes(kept)
