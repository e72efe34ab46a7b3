"""Fresh RSA keys made ahead of need on an otherwise idle core (performance only; lab identities).

OpenSSL releases the GIL while it generates an RSA key, so a lab cluster's identities (a dozen
RSA-2048 keys at ~55 ms each, the bulk of the catalogue's set-up) can be made on a second core
while the first one builds files and boots phones. Rules:

* Every key comes from OpenSSL (``rsa.generate_private_key``) and is handed out **exactly once**:
  :meth:`FreshKeySupply.take` pops it from the stock under the lock; nothing else keeps a reference.
  When the stock is empty the caller generates its key inline (never waits for the thread).
* Only RSA is stocked (an EC key takes well under a millisecond: made inline). Seeded keys
  (``generate_key(spec, unsafe_seed=...)``) never come from here: they must stay reproducible.
* Bounded: at most :data:`STOCK` keys per key spec that was asked for, by one daemon thread per
  process. 8 is about one scenario's worth: the catalogue's scenarios take 7 to 17 fresh keys each
  (9 typical: a one-node lab's 6 identities in a row, then MICs and regenerations), and the thread
  refills while the scenario runs. A stock of 24 measured no faster (over a whole run the keys are
  wanted about as fast as one core makes them) and leaves more keys made for nothing when a short
  process (``phoneemu lab init``) exits. Keys above 2048 bits (5-10 times the work each, never in
  the catalogue) are stocked :data:`BIG_STOCK` at a time, so a long process that once asked for
  one does not spend seconds of CPU on keys it may never take.
* Lazy: the thread starts on the first :meth:`~FreshKeySupply.take` (or :meth:`~FreshKeySupply.expect`,
  a hint that keys of a spec will be wanted: the scenario runner gives it for its unseeded labs
  before it loads the lab modules), so a process that never asks for keys never runs it.
  It stops after :data:`IDLE_SECONDS` without a take, and at exit (``atexit``: it finishes the key in
  progress, at most ``JOIN_SECONDS``, so that OpenSSL is not torn down under it).
* Per process: a ``spawn`` child (``run -j``, fleet shards, pytest-xdist workers) has its own supply;
  a ``fork`` child starts with an empty stock and no thread (keys in the parent's stock are never
  handed out twice).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key

__all__ = ["BIG_STOCK", "IDLE_SECONDS", "JOIN_SECONDS", "STOCK", "FreshKeySupply", "expect", "supply", "take"]

#: Keys kept ready per key spec (see the module rules for why 8).
STOCK = 8
#: Keys kept ready per key spec above 2048 bits (at most ``stock``).
BIG_STOCK = 2
#: The thread stops after this many seconds without a take (it restarts on the next one).
IDLE_SECONDS = 5.0
#: At exit, how long to wait for the key in progress (an RSA-4096 key takes about a second).
JOIN_SECONDS = 5.0

Generate = Callable[[KeySpec], PrivateKey]


def _fresh_rsa(spec: KeySpec) -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=spec.bits)


class FreshKeySupply:
    """A bounded stock of fresh RSA keys per :class:`KeySpec`, kept full by one daemon thread.

    ``generate`` makes one fresh key (default: OpenSSL); tests pass their own.
    """

    def __init__(self, *, stock: int = STOCK, idle_seconds: float = IDLE_SECONDS,
                 generate: Generate = _fresh_rsa) -> None:
        if stock < 0:
            raise ValueError(f"stock {stock} < 0")
        self.stock = stock
        self.idle_seconds = idle_seconds
        self._generate = generate
        self._reset()

    def _reset(self) -> None:
        """Empty state (also the state of a fork child: a new lock, no keys, no thread)."""
        self._cond = threading.Condition(threading.Lock())
        self._stocks: dict[KeySpec, deque[PrivateKey]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self.made = 0  # keys the thread made
        self.taken = 0  # keys handed out from the stock
        self.inline = 0  # keys the callers made themselves (stock empty)

    # --- consumer side --------------------------------------------------------------------------
    def take(self, spec: KeySpec) -> PrivateKey:
        """A fresh private key of ``spec`` that nobody else gets: from the stock, else made now."""
        if spec.kind != "rsa":
            return generate_key(spec)
        if self.stock == 0:
            return self._generate(spec)
        with self._cond:
            found = self._stocks.setdefault(spec, deque())
            key = found.popleft() if found else None
            if key is not None:
                self.taken += 1
            else:
                self.inline += 1
            self._wake()
        return key if key is not None else self._generate(spec)

    def expect(self, spec: KeySpec) -> None:
        """Keys of ``spec`` will be wanted soon: start stocking them now (RSA only; no key taken)."""
        if spec.kind != "rsa" or self.stock == 0:
            return
        with self._cond:
            self._stocks.setdefault(spec, deque())
            self._wake()

    def ready(self, spec: KeySpec) -> int:
        """How many keys of ``spec`` are in stock now."""
        with self._cond:
            return len(self._stocks.get(spec, ()))

    def _wake(self) -> None:
        """(Lock held.) Start the thread if it is not running, else tell it a key was taken."""
        if self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="phoneemu-key-supply", daemon=True)
            self._thread.start()
        else:
            self._cond.notify()

    # --- producer side --------------------------------------------------------------------------
    def limit(self, spec: KeySpec) -> int:
        """How many keys of ``spec`` the thread keeps ready: ``stock``, at most BIG_STOCK above 2048 bits."""
        return self.stock if spec.bits <= 2048 else min(self.stock, BIG_STOCK)

    def _wanted(self) -> KeySpec | None:
        """(Lock held.) The spec with the fewest keys in stock below its limit, if any."""
        short = [(len(q), spec.bits) for spec, q in self._stocks.items() if len(q) < self.limit(spec)]
        if not short:
            return None
        fewest = min(short)
        return next(spec for spec, q in self._stocks.items() if (len(q), spec.bits) == fewest)

    def _run(self) -> None:
        me = threading.current_thread()
        cond = self._cond
        while True:
            with cond:
                while (spec := self._wanted()) is None and not self._closed:
                    if not cond.wait(self.idle_seconds) and self._wanted() is None:
                        break  # idle: no take for idle_seconds
                if spec is None or self._closed or self._thread is not me:
                    if self._thread is me:
                        self._thread = None  # the next take starts a new thread
                    return
            try:
                key = self._generate(spec)  # outside the lock: OpenSSL releases the GIL meanwhile
            except Exception:  # callers making keys inline meet the same error, with their context
                with cond:
                    if self._thread is me:
                        self._thread = None
                return
            with cond:
                if self._closed or self._thread is not me:
                    return  # closed meanwhile: this key is dropped, never handed out
                self._stocks[spec].append(key)
                self.made += 1

    # --- life cycle -----------------------------------------------------------------------------
    def close(self, timeout: float = JOIN_SECONDS) -> None:
        """Stop the thread (waiting at most ``timeout`` s for the key in progress) and drop the stock.
        A closed supply still hands out keys, made inline."""
        with self._cond:
            self._closed = True
            thread, self._thread = self._thread, None
            self._stocks.clear()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def after_fork_in_child(self) -> None:
        """Forget the parent's stock and thread (the child must not hand out the parent's keys)."""
        self._reset()


#: The process-wide supply used by the lab PKI.
supply = FreshKeySupply()


def _close_at_exit() -> None:
    supply.close()  # the module's supply at exit time (tests may have replaced it)


def _forget_in_fork_child() -> None:
    supply.after_fork_in_child()


atexit.register(_close_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_fork_child)


def take(spec: KeySpec) -> PrivateKey:
    """A fresh key of ``spec`` from the process-wide supply (see the module rules)."""
    return supply.take(spec)


def expect(spec: KeySpec) -> None:
    """Hint that fresh keys of ``spec`` will be wanted soon (starts the process-wide supply's thread)."""
    supply.expect(spec)
