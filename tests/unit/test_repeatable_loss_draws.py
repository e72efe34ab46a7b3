"""The lab's loss draw (phoneemu.net.tftp_server.is_lost, our convention): a pure function of the seed and
what the datagram is, dropping a share ``loss`` of many datagrams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.net.tftp_server import is_lost, loss_key

MACS = [f"0A00000033{i:02X}" for i in range(200)]


def test_a_draw_is_a_pure_function_of_seed_and_datagram() -> None:
    """The same (seed, datagram) gets the same answer in any order; loss 0 never drops; another seed
    another pattern."""
    what = [("tftp", f"SEP{mac}.cnf.xml", 1, "sent", b"\x00\x03\x00\x01", 1) for mac in MACS]
    key = loss_key(7)
    forward = [is_lost(key, 0.2, w) for w in what]
    backward = [is_lost(key, 0.2, w) for w in reversed(what)]
    assert forward == backward[::-1] and any(forward) and not all(forward)
    assert forward != [is_lost(loss_key(8), 0.2, w) for w in what]
    assert not any(is_lost(key, 0.0, w) for w in what)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(-(2**70), 2**70), loss=st.floats(0.01, 0.99))
def test_the_share_dropped_is_close_to_loss(seed: int, loss: float) -> None:
    """Over 20,000 datagrams (blocks and sendings of many files) the share dropped is ``loss`` within 0.02
    (more than 5 standard deviations)."""
    key = loss_key(seed)
    what = [(f"SEP{i:012X}.cnf.xml", "sent", block, k) for i in range(100) for block in range(50)
            for k in range(1, 5)]
    share = sum(is_lost(key, loss, w) for w in what) / len(what)
    assert abs(share - loss) < 0.02, (share, loss)
