"""Fuzzing of signed-file parsers (issue #7; spec §A, §B, §C.1, §C.3).

* :mod:`~phoneemu.fuzz.tlvtree` — a lossless TLV tree of a signed file and re-signing (spec §A.3).
* :mod:`~phoneemu.fuzz.corpus` — deterministic valid seed files of each format and their keys.
* :mod:`~phoneemu.fuzz.mutators` — structure-aware mutators; :class:`~phoneemu.fuzz.mutators.Mutator`.
* :mod:`~phoneemu.fuzz.messages` — TVS and CAPF messages: seeds, mutation, our targets (spec §E, §F).
* :mod:`~phoneemu.fuzz.sipmsg` — SIP REGISTER and its answers: seeds, mutation, our targets (spec §G.13).
* :mod:`~phoneemu.fuzz.mediamsg` — a call's SRTP packets and SDP offers/answers: seeds, mutation, our
  targets (spec §G.14).
* :mod:`~phoneemu.fuzz.targets` — in-process callables, external commands, a device under test
  served over TFTP.
* :mod:`~phoneemu.fuzz.engine` — the seeded, bounded loop with deduplication and crash saving.
* :mod:`~phoneemu.fuzz.findings` — a finding and its folder (``input.bin``, ``minimized.bin``, ``info.json``).
* :mod:`~phoneemu.fuzz.minimize_plan` — how a new finding is minimised (its budget, ``minimize_note``), and
  carried out.
* :mod:`~phoneemu.fuzz.runwatch` — an in-process call that never ends: a hang at Ctrl-C, stopped past
  ``--time``, an attempt of the minimiser stopped at once.
* :mod:`~phoneemu.fuzz.supervise` — a user's callable run in a child process: its native crash (SIGSEGV,
  an abort) is a finding, not the fuzzer's end.
* :mod:`~phoneemu.fuzz.minimize` — shrink a crashing input.
* :mod:`~phoneemu.fuzz.reproduce` — where a finding's commands must run (``cd`` to the fuzzer's folder).
* :mod:`~phoneemu.fuzz.strategies` — hypothesis strategies over the mutators (needs hypothesis).

The command line is ``phoneemu fuzz`` (:mod:`phoneemu.commands.fuzz`).
"""

from __future__ import annotations

__all__ = ["FILE_FORMATS", "FORMATS", "MESSAGE_FORMATS"]

FILE_FORMATS = ("itl", "ctl", "sgn", "enc", "firmware")
"""Signed files: a TLV header (spec §A) and a body; mutated through :mod:`~phoneemu.fuzz.tlvtree`."""
MESSAGE_FORMATS = ("tvs-response", "tvs-request", "capf", "sip-response", "sip-request", "srtp", "sdp")
"""TVS / CAPF messages (spec §E, §F): :mod:`~phoneemu.fuzz.messages`; SIP registration messages (§G.13):
:mod:`~phoneemu.fuzz.sipmsg`; SRTP packets and SDP descriptions of a call (§G.14):
:mod:`~phoneemu.fuzz.mediamsg`."""
FORMATS = FILE_FORMATS + MESSAGE_FORMATS
