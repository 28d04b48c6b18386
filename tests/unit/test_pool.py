"""The batch's worker plumbing (tools/pool.py): results in order, bounded work in flight, an orderly stop."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dicompose.tools.pool import _IN_FLIGHT_PER_WORKER, InlineExecutor, _until_stop, bounded_map, chunks


@dataclass
class Outcome:
    value: int
    stop: bool = False


def test_results_come_in_order_with_never_more_than_a_few_in_flight():
    running, most = 0, 0
    lock = threading.Lock()
    gate = threading.Event()

    def work(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(0.001)
        with lock:
            running -= 1
        return item * 2

    with ThreadPoolExecutor(4) as pool:
        results = list(bounded_map(pool, work, list(range(200)), workers=2))
    assert results == [i * 2 for i in range(200)]
    assert most <= 4  # one chunk running and one queued per worker (chunks of one: not a process pool)


def test_a_stop_ends_the_submissions_and_the_chunk_at_the_stopping_result():
    assert _until_stop(lambda i: Outcome(i, stop=i == 2), [0, 1, 2, 3]) == [Outcome(0), Outcome(1), Outcome(2, True)]
    stopped: list[Outcome] = []
    results: list[int] = []
    items = list(range(50))
    for result in bounded_map(InlineExecutor(), lambda i: Outcome(i, i == 5), items, 1, lambda: bool(stopped)):
        results.append(result.value)
        if result.stop:
            stopped.append(result)
    assert results == list(range(len(results)))  # in order, none lost
    assert 6 <= len(results) <= 6 + _IN_FLIGHT_PER_WORKER  # those already in flight report; nothing more is sent


def test_chunks_cover_everything_once():
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
