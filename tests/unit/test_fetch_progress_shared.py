"""TftpFetcher and HttpFetcher say the download under way (``asking``, ``bytes_so_far``) with one piece of
code (net/fetch.py's module docstring): the counter a transfer hands over as it starts, dropped after."""

from __future__ import annotations

import pytest

from phoneemu.net.fetch import HttpFetcher, TftpFetcher


def test_both_fetchers_share_what_they_say_of_a_download_under_way() -> None:
    assert TftpFetcher.bytes_so_far is HttpFetcher.bytes_so_far
    assert TftpFetcher.asking is HttpFetcher.asking


@pytest.mark.parametrize("fetcher", [TftpFetcher("127.0.0.1"), HttpFetcher("127.0.0.1")],
                         ids=["tftp", "http"])
def test_a_fetcher_says_its_transport_and_bytes_only_while_under_way(
        fetcher: TftpFetcher | HttpFetcher) -> None:
    assert (fetcher.asking, fetcher.bytes_so_far()) == ("", None)
    fetcher._started(lambda: 1234)
    assert (fetcher.asking, fetcher.bytes_so_far()) == (fetcher.transport, 1234)
