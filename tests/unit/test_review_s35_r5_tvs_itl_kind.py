"""``tvs --itl FILE`` of the wrong kind (review R5 of a71e060): said in tvs's own options. Was predict's:
``--installed-itl cert.der: a DER file (CERTIFICATE), not an ITL ...; a certificate TVS vouches for is
--tvs-cert's (PEM)`` and ``a phone's config is --installed-config's``, three options tvs does not have.
``predict --installed-itl`` keeps its words. Files only: the error comes before any server is asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto.certs import cert_der
from tests.signer_helpers import self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ITL_TAKES = ("not an ITL (ITLFile.tlv): give the ITL the phone holds now (tftp get ITLFile.tlv from its "
             "cluster)")


@pytest.fixture
def cert(tmp_path: Path) -> Path:
    _key, made = self_signed("CN=tvs-itl-kind;O=phoneemu", seed="tvs-itl-kind", serial=0x11)
    path = tmp_path / "cert.der"
    path.write_bytes(cert_der(made))
    return path


def _tvs_err(capsys: pytest.CaptureFixture[str], itl: Path) -> str:
    """tvs's one error line for ``--itl ITL`` (exit 2, nothing asked)."""
    assert main(["tvs", "--itl", str(itl), "127.0.0.1:1", str(VECTORS / "itl_lab.tlv")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured
    return captured.err.strip()


def test_a_certificate_given_as_tvs_itl_is_told_tvs_s_options(cert: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    err = _tvs_err(capsys, cert)
    assert err == (f"phoneemu tvs: --itl {cert}: a DER file (CERTIFICATE), {ITL_TAKES}; a certificate to ask "
                   "TVS about is the last argument (CERT_OR_FILE)"), err
    assert "--installed-" not in err and "--tvs-cert" not in err  # predict's options


def test_a_config_given_as_tvs_itl_is_told_tvs_s_config_option(capsys: pytest.CaptureFixture[str]) -> None:
    config = VECTORS / "SEP001122334455.cnf.xml.sgn"
    err = _tvs_err(capsys, config)
    assert err == (f"phoneemu tvs: --itl {config}: a signed file (.sgn), {ITL_TAKES}; a phone's config is "
                   "--config's"), err


def test_predict_keeps_its_own_options(cert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--installed-itl", str(cert), "--now", "1780000000",
                 str(VECTORS / "itl_lab.tlv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"phoneemu predict: --installed-itl {cert}: a DER file (CERTIFICATE), {ITL_TAKES}; a "
                   "certificate TVS vouches for is --tvs-cert's (PEM)"), err
