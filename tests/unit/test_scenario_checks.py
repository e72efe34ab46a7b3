"""Trust-list checks of the scenario format: ``itl_file_status`` (phone checksum vs ``show itl``),
``itl_records`` and ``itl_signer`` (seed "Initial Trust List"; spec §G.1, §H.4)."""

from __future__ import annotations

from pathlib import Path

from phoneemu.formats import trustlist
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario import checks


def test_trust_list_checks_read_records_signer_and_file_status(tmp_path: Path) -> None:
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", nodes=2, now=1_780_272_000)
    tl = trustlist.parse(lab.get("ITLFile.tlv") or b"")

    class _TL:
        report = None
        running_load = None

        def trust_list(self, kind: str) -> object:
            return tl if kind == "ITL" else None

        def reported_checksum(self, kind: str) -> tuple[str, str] | None:
            return ("md5", tl.md5()) if kind == "ITL" else None

        def cluster_checksums(self, kind: str) -> dict[str, str] | None:
            return lab.checksums("ITL" if kind == "ITL" else "CTL")

    v = _TL()
    assert checks.evaluate("itl_file_status", v, "match")[1]
    assert checks.evaluate("ctl_file_status", v, "not-installed")[1]
    records = ["SAST ITLRECOVERY_lab-pub", "SAST lab-pub", "CCM+TFTP lab-pub", "CAPF CAPF-*",
               "TVS lab-pub-TVS", "TVS lab-sub1-TVS"]
    assert checks.evaluate("itl_records", v, records)[1]
    assert not checks.evaluate("itl_records", v, records[:-1])[1]          # a record missing
    assert not checks.evaluate("itl_records", v, [*records, "TVS x"])[1]   # a record too many
    assert checks.evaluate("itl_signer", v, "ITLRECOVERY")[1]
    assert not checks.evaluate("itl_signer", v, "CN=lab-pub;")[1]
    lab.regenerate("tvs-2", now=1_780_272_100)
    assert checks.evaluate("itl_file_status", v, "mismatch")[1]


def test_signaling_and_trust_file_retries() -> None:
    from types import SimpleNamespace

    def view(*rules_actions: tuple[str, str]) -> object:
        decisions = [SimpleNamespace(rule=r, kind="transport", action=a) for r, a in rules_actions]
        return SimpleNamespace(report=SimpleNamespace(decisions=decisions))

    retry = ("G.9-retry-trust-file", "retry")
    tcp = view(retry, retry, retry, retry, ("G.9-fallback-tcp", "use-tcp"))
    assert checks.evaluate("signaling", tcp, "tcp") == ("tcp", True)
    assert checks.evaluate("trust_file_retries", tcp, 4) == (4, True)
    tls = view(("G.9-tls-with-ctl", "use-tls"))
    assert checks.evaluate("signaling", tls, "tls") == ("tls", True)
    assert checks.evaluate("trust_file_retries", tls, 4) == (0, False)
    assert checks.evaluate("signaling", SimpleNamespace(report=None), "none") == ("not booted yet", True)


def test_retransmitted_reads_the_boots_tftp_retransmissions() -> None:
    """``retransmitted: true`` holds when the last boot sent a TFTP packet again (spec §H.3); the
    actual value shown is how many it sent."""
    from types import SimpleNamespace

    lossy = SimpleNamespace(report=SimpleNamespace(retransmits=4))
    clean = SimpleNamespace(report=SimpleNamespace(retransmits=0))
    assert checks.evaluate("retransmitted", lossy, True) == (4, True)
    assert checks.evaluate("retransmitted", lossy, False) == (4, False)
    assert checks.evaluate("retransmitted", clean, False) == (0, True)
    assert checks.evaluate("retransmitted", clean, True) == (0, False)
    assert checks.evaluate("retransmitted", SimpleNamespace(report=None), True) == ("not booted yet", False)


def test_fetched_over_reads_what_each_file_came_over() -> None:
    """``fetched_over`` (spec §H.1): http / tftp when every received file came over it, mixed, none."""
    from types import SimpleNamespace

    def view(**over: str) -> object:
        return SimpleNamespace(report=SimpleNamespace(fetched_over=over))

    assert checks.evaluate("fetched_over", view(a="http", b="http"), "http") == ("http", True)
    assert checks.evaluate("fetched_over", view(a="tftp"), "http") == ("tftp", False)
    assert checks.evaluate("fetched_over", view(a="http", b="tftp"), ["tftp", "http"]) == ("mixed", False)
    assert checks.evaluate("fetched_over", view(a="http", b="tftp"), "mixed") == ("mixed", True)
    assert checks.evaluate("fetched_over", view(), "none") == ("none", True)
    assert checks.evaluate("fetched_over", SimpleNamespace(report=None), "http") == ("not booted yet", False)
