"""``formats.detect.detect(data, name)``: the name hint is text or a path (``os.PathLike``); anything else
(bytes, a number, a path of bytes) is phoneemu's DecodeError naming the argument ``name``, whatever the
data. Before: a ``Path`` escaped as TypeError (``Path.replace`` takes one argument), bytes as TypeError,
an int as AttributeError — where the name was read at all (it was not for XML)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from phoneemu.errors import DecodeError
from phoneemu.formats import detect
from phoneemu.formats.header import FileSigner, sign_file
from tests.unit.test_rules import NOW, ident

XML = b"<device/>"
GARBAGE = b"not a file"


def _signed_named(filename: str) -> bytes:
    """A signed file whose header FILENAME says nothing of its kind (so the name hint decides)."""
    who = ident("detect-name")
    return sign_file(version=(1, 2), filename=filename, timestamp=NOW, body=b"\x01\x00\x02\x00\x05\x04\x00",
                     signer=FileSigner(key=who.key, cert=who.cert), hash_alg=1)


class _BytesPath:
    """A path of bytes."""

    def __fspath__(self) -> bytes:
        return b"CTLFile.tlv"


class _BadPath:
    """A path (``os.PathLike`` by its ``__fspath__``) whose ``__fspath__`` gives neither str nor bytes."""

    def __fspath__(self) -> object:
        return 7


@pytest.mark.parametrize("name", [Path("dir/CTLFile.tlv"), PurePosixPath("CTLFile.tlv"),
                                  PureWindowsPath("C:\\tftp\\CTLFile.tlv"), "dir/CTLFile.tlv"])
def test_a_path_is_a_name_hint_like_its_text(name: object) -> None:
    data = _signed_named("blob")
    assert detect.detect(data, name) == "ctl"  # type: ignore[arg-type]
    assert detect.detect(data, None) == "sgn"
    assert detect.detect(XML, name) == "xml"  # type: ignore[arg-type]


def test_a_path_hint_is_named_in_the_error_of_unknown_bytes() -> None:
    with pytest.raises(DecodeError, match=r"name suggests itl"):
        detect.detect(GARBAGE, Path("ITLSEP.tlv"))


@pytest.mark.parametrize("name", [b"CTLFile.tlv", 7, 1.5, ["CTLFile.tlv"], _BytesPath(), _BadPath()],
                         ids=["bytes", "int", "float", "list", "bytes-path", "bad-path"])
@pytest.mark.parametrize("data", [_signed_named("blob"), XML, GARBAGE], ids=["signed", "xml", "garbage"])
def test_any_other_name_is_a_decode_error_naming_the_argument(data: bytes, name: object) -> None:
    with pytest.raises(DecodeError) as caught:
        detect.detect(data, name)  # type: ignore[arg-type]
    err = caught.value
    assert err.path == "name" and err.fmt == "detect"
    assert type(name).__name__ in err.message and "name must be text or a path" in err.message
