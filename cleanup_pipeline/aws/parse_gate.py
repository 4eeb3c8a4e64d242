"""One Scan response parsed at a time, however many segment threads are scanning.

botocore turns a Scan response (up to 1 MB, 5,000 projected users) into Python dicts, about
twice over while it parses; with four segments in threads, the four responses often arrive
together and were parsed at once, all under the interpreter lock anyway. Parsing them one after
the other takes the same CPU time but holds one parse's objects at a time: on the 20,000-user
benchmark world the scan step's peak fell from 288-297 MiB to 268-276 MiB of the run process.
Only the parse is gated: downloading the next page (no lock held) and decoding a parsed page
(partly outside the interpreter lock, in pyarrow and numpy) still overlap between segments.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_EVENTS = ("before-parse.dynamodb.Scan", "response-received.dynamodb.Scan")
_gate = threading.Lock()
_thread = threading.local()  # .gated: the thread asked for the gate; .holding: it holds it


def _enter(**_: Any) -> None:
    if getattr(_thread, "gated", False) and not getattr(_thread, "holding", False):
        _gate.acquire()
        _thread.holding = True


def _leave(**_: Any) -> None:
    if getattr(_thread, "holding", False):
        _thread.holding = False
        _gate.release()


@contextmanager
def one_scan_parse_at_a_time(client: Any) -> Iterator[None]:
    """Within the block, the calling thread's Scan responses on `client` are parsed while no
    other such thread parses one. Threads outside such a block are not gated.

    The gate is taken just before botocore parses a response and given back when it has
    received it (`response-received`, also after a failed attempt, so that none is held while
    the retry policy waits); leaving the block gives it back if a parse raised in between.
    """
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None:  # registering again with the same unique_id does nothing
        events.register(_EVENTS[0], _enter, unique_id=f"{__name__}.enter")
        events.register(_EVENTS[1], _leave, unique_id=f"{__name__}.leave")
    _thread.gated = True
    try:
        yield
    finally:
        _thread.gated = False
        _leave()
