"""Secure URLs over plain HTTP (seed "Update ITL File for Cisco Unified IP Phones" step 4, spec §G.11): the
lab's ``secure-urls`` parameter, the config element it writes, the phone's scheme rule and its plain-HTTP
directory over loopback, and the loader's and CLI's errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.formats import config
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.https_service import PLAIN_DIRECTORY_XML, HttpsAppHandler
from phoneemu.net.tls import TlsServer
from phoneemu.phone.events import EventLog
from phoneemu.phone.https import HttpsResult, directory_scheme, open_plain_http
from tests.helpers import loader_error

MAC = "001122334455"


@pytest.fixture
def lab(tmp_path: Path) -> LabCluster:
    c = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024", now=1_780_000_000)
    c.add_phone(MAC)
    return c


def _config(lab: LabCluster) -> config.DeviceConfig:
    return config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")


def test_the_parameter_writes_an_http_url_into_every_config_and_back(lab: LabCluster) -> None:
    assert config.secure_directory_url(_config(lab)) is None and directory_scheme(_config(lab)) == "https"
    lab.set_secure_urls("http")
    url = config.secure_directory_url(_config(lab))
    assert url == f"http://{lab.state.host}:8080/ccmcip/xmldirectory.jsp"
    assert directory_scheme(_config(lab)) == "http"
    assert LabCluster.open(lab.root).state.secure_urls_http  # saved
    lab.apply("secure-urls", scheme="https")
    assert config.secure_directory_url(_config(lab)) is None and directory_scheme(_config(lab)) == "https"
    with pytest.raises(EncodeError) as info:
        lab.set_secure_urls("ftp")
    assert info.value.path == "scheme"


@pytest.mark.parametrize(("element", "scheme"), [
    ("<secureDirectoryURL>HTTP://10.0.0.1:8080/x</secureDirectoryURL>", "http"),
    ("<secureDirectoryURL>https://10.0.0.1:8443/x</secureDirectoryURL>", "https"),
    ("<secureDirectoryURL></secureDirectoryURL>", "https"),
    ("<secureDirectoryURL><a>http://x</a></secureDirectoryURL>", "https"),  # not text: keeps to HTTPS
])
def test_the_phone_takes_http_only_from_an_http_url(element: str, scheme: str) -> None:
    cfg = config.DeviceConfig(device_name=f"SEP{MAC}", extra={"secureDirectoryURL": element})
    assert directory_scheme(config.parse(config.build(cfg))) == scheme


def test_a_malformed_element_is_a_decode_error_naming_it() -> None:
    cfg = config.DeviceConfig(device_name=f"SEP{MAC}", extra={"secureDirectoryURL": "<secureDirectoryURL>"
                                                                "<a>x</a><b>y</b></secureDirectoryURL>"})
    with pytest.raises(DecodeError) as info:
        config.secure_directory_url(cfg)
    assert "secureDirectoryURL" in str(info.value)


def test_the_phone_opens_the_plain_directory_over_loopback() -> None:
    async def body() -> tuple[HttpsResult, HttpsResult, EventLog]:
        events = EventLog()
        async with TlsServer(HttpsAppHandler(body=PLAIN_DIRECTORY_XML), None, "127.0.0.1", 0) as srv:
            port = srv.port
            ok = await open_plain_http("127.0.0.1", port, mac=MAC, events=events, clock=lambda: 0)
        closed = await open_plain_http("127.0.0.1", port, mac=MAC, events=events, clock=lambda: 0,
                                       timeout=2.0)
        return ok, closed, events

    ok, closed, events = asyncio.run(body())
    assert ok.how == "plain-http" and ok.rule == "E.7.1-plain-http" and not ok.trusted
    assert ok.http_status == 200 and ok.body == PLAIN_DIRECTORY_XML
    assert closed.how == "connect-failed" and closed.status == "Host Not Found"
    assert any(e.rule == "E.7.1-plain-http" and e.accepted for e in events.events)
    assert "Host Not Found" in events.status_messages


@pytest.mark.parametrize(("step", "words"), [
    ("- admin: {op: secure-urls}", "scheme"),
    ("- admin: {op: secure-urls, scheme: ftp}", "scheme"),
    ("- admin: {op: secure-urls, scheme: http, on: true}", "on"),
    ("- expect: {phones: a, https: cleartext}", "https"),
])
def test_the_loader_names_a_bad_secure_urls_step(step: str, words: str) -> None:
    assert words in str(loader_error(step))


def test_the_cli_sets_and_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "4", "--key", "rsa1024", "--now", "1780000000"]) == 0
    assert main(["lab", "secure-urls", str(d), "http"]) == 0
    assert LabCluster.open(d).state.secure_urls_http
    assert main(["lab", "secure-urls", str(d), "https"]) == 0
    assert not LabCluster.open(d).state.secure_urls_http
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["lab", "secure-urls", str(d), "gopher"])
    assert "invalid choice" in capsys.readouterr().err
