"""Where a benchmark's CPU time goes, inside one process: the garbage collector's share, and each kind of
thread's.

The local AWS runs everything an item costs in the benchmark's own process: each Lambda invocation on its
own thread (``lambda-<Function>``, localaws/lambda_runner.py), each execution's interpreter on its own
(``localaws-execution-<state machine>``), and moto's interpreter evaluates each Task state on a thread of
its own (``Thread-N``). So the CPU time of the threads of each kind, per item, says which part of the work
an item's extra cost is in; the process's total says nothing of that.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from collections import defaultdict
from typing import Any

__all__ = ["CollectorTime", "ThreadCpu", "thread_kind"]


class CollectorTime:
    """CPU time spent in Python's cyclic garbage collector while installed (``gc.callbacks``): the
    collecting thread's own CPU time (``time.thread_time``) from the start callback to the stop one,
    both of which run on the thread that triggered the collection (so time the OS kept the process off
    the core is not counted). A local-AWS cost: it grows with the heap (moto's models and every
    execution's history), which on AWS lives in no process of ours. ``by_kind``: the same time by the
    kind of thread it ran on (``thread_kind``): a collection runs on whichever thread allocated when the
    heap's counts crossed their threshold, so it lands on threads that did not cause it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self.by_kind: dict[str, float] = defaultdict(float)
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            spent = time.thread_time() - self._began
            self.seconds += spent
            self.by_kind[thread_kind(threading.current_thread().name)] += spent
            self.collections += 1

    def __enter__(self) -> CollectorTime:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


_NUMBERED = re.compile(r"-\d+(_\d+)?( \(.*\))?$")


def thread_kind(name: str) -> str:
    """A thread's kind: its name without the number threading gives it (``Thread-12 (run)`` -> ``Thread``);
    the local AWS's own threads are named by what they run (``lambda-StartItem``)."""
    return _NUMBERED.sub("", name)


class ThreadCpu:
    """CPU time (``time.thread_time``) of the threads started while installed, by kind, and of the thread
    that installed it (the caller's). A thread started before is not counted (the local AWS's servers,
    EventBridge's delivery loop): ``other_s`` of a process is its CPU time less these.

    Installed by replacing ``threading.Thread.run`` for the process while in force: every thread runs
    through it, and reads its own clock at its start and end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.threads: dict[str, int] = defaultdict(int)
        self.caller_s = 0.0
        self._lock = threading.Lock()
        self._original: Any = None
        self._began = 0.0

    def _measured(self, original: Any) -> Any:
        def run(thread: threading.Thread) -> None:
            began = time.thread_time()
            try:
                original(thread)
            finally:
                spent = time.thread_time() - began
                with self._lock:
                    self.seconds[thread_kind(thread.name)] += spent
                    self.threads[thread_kind(thread.name)] += 1

        return run

    def __enter__(self) -> ThreadCpu:
        self._original = threading.Thread.run
        threading.Thread.run = self._measured(self._original)  # type: ignore[method-assign]
        self._began = time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.caller_s = time.thread_time() - self._began
        threading.Thread.run = self._original  # type: ignore[method-assign]

    def by_kind(self) -> dict[str, float]:
        """Seconds of CPU by kind of thread, those that ended while installed."""
        with self._lock:
            return dict(self.seconds)
