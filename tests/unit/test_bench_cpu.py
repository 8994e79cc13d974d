"""bench/cpu.py: CPU time by kind of thread, for the fan-out benchmark's breakdown."""

from __future__ import annotations

import threading
import time

from bench.cpu import CollectorTime, ThreadCpu, thread_kind


def _busy(seconds: float) -> None:
    began = time.thread_time()
    while time.thread_time() - began < seconds:
        pass


def test_a_thread_kind_is_its_name_without_its_number() -> None:
    assert thread_kind("Thread-12 (_exec_and_notify)") == "Thread"
    assert thread_kind("Thread-3") == "Thread"
    assert thread_kind("ThreadPoolExecutor-0_3") == "ThreadPoolExecutor"
    assert thread_kind("lambda-StartItem") == "lambda-StartItem"
    assert thread_kind("localaws-execution-nexus-deployer-local-deployment") == (
        "localaws-execution-nexus-deployer-local-deployment"
    )


def test_threads_started_while_installed_are_counted_by_kind_and_the_caller_apart() -> None:
    original = threading.Thread.run
    stop = threading.Event()

    running = threading.Event()

    def burn_then_wait() -> None:
        running.set()
        _busy(0.05)
        stop.wait()

    before = threading.Thread(target=burn_then_wait, name="before")
    before.start()  # started before: not counted, even though it burns CPU meanwhile
    running.wait()  # its run() began before the hook went in
    with ThreadCpu() as cpu:
        workers = [threading.Thread(target=_busy, args=(0.04,), name=f"lambda-Busy-{n}") for n in range(2)]
        workers.append(threading.Thread(target=_busy, args=(0.02,), name="lambda-Idle"))
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        _busy(0.03)  # the caller's own
    stop.set()
    before.join()
    counted = cpu.by_kind()
    assert set(counted) == {"lambda-Busy", "lambda-Idle"}
    assert cpu.threads["lambda-Busy"] == 2
    assert 0.08 <= counted["lambda-Busy"] < 0.2
    assert 0.02 <= counted["lambda-Idle"] < 0.1
    assert 0.03 <= cpu.caller_s < 0.1
    assert threading.Thread.run is original  # restored


def test_a_collection_is_counted_on_the_kind_of_thread_it_ran_on() -> None:
    import gc

    with CollectorTime() as collector:
        worker = threading.Thread(target=gc.collect, name="lambda-Collects-1")
        worker.start()
        worker.join()
        gc.collect()
    assert collector.collections >= 2
    assert set(collector.by_kind) >= {"lambda-Collects", "MainThread"}
    assert collector.by_kind["lambda-Collects"] > 0  # a full collection takes measurable CPU
    assert collector.by_kind["MainThread"] > 0
