"""What config parses share stays bounded whatever configs come (module docstring of
phoneemu.formats.config; issue #6): a fuzzer's or a hostile cluster's configs do not grow the process."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Callable

import pytest

from phoneemu.formats import config as config_fmt

#: longer than the parse memo's largest key (16 KiB): only the sharing of servers could keep it
LONG_HOST = "h" * 20_000


def _tvs_doc(host: str) -> bytes:
    return (f"<device><TVS><members><member><port>2445</port><address>{host}</address></member></members>"
            "</TVS></device>").encode()


def _capf_doc(host: str) -> bytes:
    return (f"<device><capfList><capf><phonePort>3804</phonePort><processNodeName>{host}</processNodeName>"
            "</capf></capfList></device>").encode()


@pytest.mark.parametrize(("doc", "field"), [(_tvs_doc, "tvs_servers"), (_capf_doc, "capf_servers")])
def test_a_server_with_a_long_host_is_not_kept_once_its_config_is_gone(doc: Callable[[str], bytes],
                                                                        field: str) -> None:
    """Before: every server was remembered (1,024 of them, each host up to the 256 KiB config limit)."""
    cfg = config_fmt.parse(doc(LONG_HOST))
    server = getattr(cfg, field)[0]
    assert server.host == LONG_HOST
    gone = weakref.ref(server)
    del cfg, server
    gc.collect()
    assert gone() is None
    first, again = (getattr(config_fmt.parse(doc("10.0.0.1") + tail), field) for tail in (b"", b"\n"))
    assert first is again  # two configs naming a host as clusters write it still share its servers


def test_parse_hands_no_text_to_sys_intern(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython 3.12 keeps every ``sys.intern`` string for the life of the process (the project supports
    3.11+), so interning what a config says grew memory with every distinct value parsed: 2,000 configs
    with a 50 KB element kept 95 MiB. Simulated here by an intern keeping what it is given."""
    kept: list[str] = []

    def immortal(text: str) -> str:
        kept.append(text)
        return text

    monkeypatch.setattr(sys, "intern", immortal)
    for n in range(3):
        cfg = config_fmt.parse(
            f"<device><loadInformation>load-{n}</loadInformation><networkLocale>locale-{n}</networkLocale>"
            f"<dialTemplate>rules-{n}.xml</dialTemplate><note>{'x' * 9000}{n}</note></device>".encode())
        assert cfg.network_locale == f"locale-{n}" and cfg.extra_text("note") == "x" * 9000 + str(n)
    assert kept == []
