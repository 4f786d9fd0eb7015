"""Fetching a page's API reads at once, before the page draws them one after another.

A page asks the collector for its cards in the order it draws them, each waiting for the one before; run at once
first, each on its own thread, they overlap (the collector answers each on a thread of its own), and the page's
own calls then find their answers in the data module's cache (`st.cache_data`, shared across threads).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from dashboard.data.client import ApiError

Read = Callable[[], object]
MAX_AT_ONCE = 8  # a page's cards; more would only queue in the collector behind its two cores


def concurrently(reads: Sequence[Read]) -> None:
    """Run `reads` (cached client functions with their arguments bound) at once and wait for all of them.

    A read that fails is left to the page: the cache keeps no error, so the page's own call asks again and shows
    what went wrong where it always did."""
    if len(reads) < 2:
        return
    context = get_script_run_ctx()

    def attach() -> None:  # the session's context, so the cache and the session's settings behave as on its thread
        add_script_run_ctx(threading.current_thread(), context)

    with ThreadPoolExecutor(min(MAX_AT_ONCE, len(reads)), initializer=attach) as pool:
        for future in [pool.submit(read) for read in reads]:
            with contextlib.suppress(ApiError):
                future.result()
