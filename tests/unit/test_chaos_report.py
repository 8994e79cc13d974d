"""RELIABILITY.md as ``make chaos`` writes it: the run's provenance, and the history of the runs before it
kept from the file it replaces (bench/chaos/__main__.py)."""

from __future__ import annotations

from bench.chaos.__main__ import EARLIER, history, report
from bench.chaos.scenarios import Figures


def _run(broken: list[str]) -> tuple[str, Figures, Figures]:
    clean = Figures("malformed", runs=10, terminal=10, wall_s=1.0)
    faulted = Figures("malformed", runs=10, terminal=10, wall_s=2.0, broken=broken)
    return ("malformed", clean, faulted)


def test_a_rerun_keeps_the_runs_before_it_with_the_one_it_replaces_on_top() -> None:
    first = report([_run([])], 60.0, "2026-12-07 10:00-10:01 UTC, on the tree of aaaaaaa")
    assert "This run: 2026-12-07 10:00-10:01 UTC, on the tree of aaaaaaa." in first
    assert EARLIER not in first  # nothing before it

    second = report([_run(["0 5xx"])], 60.0, "2026-12-07 11:00-11:01 UTC, on the tree of bbbbbbb", first)
    assert "This run: 2026-12-07 11:00-11:01 UTC, on the tree of bbbbbbb." in second
    assert "| NO: 0 5xx |" in second
    assert second.count(EARLIER) == 1
    assert "- **2026-12-07 10:00-10:01 UTC, on the tree of aaaaaaa**: 1 of 1 scenarios held." in second

    third = report([_run([])], 60.0, "2026-12-07 12:00-12:01 UTC, on the tree of ccccccc", second)
    earlier = third.split(EARLIER, 1)[1]
    newest, older = earlier.index("bbbbbbb"), earlier.index("aaaaaaa")
    assert newest < older  # the run just replaced comes first, the older history after it
    assert "0 of 1 scenarios held. Did not hold: 1,000 malformed requests" in earlier


def test_a_history_written_by_hand_is_kept_below_the_run_it_follows() -> None:
    previous = "\n".join(
        [
            "# Reliability under faults",
            "",
            "This run: 2026-12-07 14:26-14:45 UTC, on the tree of dd79287 (with a remark; and more).",
            "",
            "| scenario | faults | figure | holds | runs | terminal | spurious | stack | locks | wall | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            "| a | f | g | yes | 1 | 1 | 0 | 1 | 0 | 1 / 1 | 1.00 |",
            "| b | f | g | NO: x | 1 | 1 | 0 | 1 | 0 | 1 / 1 | 1.00 |",
            "",
            EARLIER,
            "",
            "- an older run, by hand",
            "",
        ]
    )
    lines = history(previous)
    assert lines[:3] == [
        EARLIER,
        "",
        "- **2026-12-07 14:26-14:45 UTC, on the tree of dd79287**: 1 of 2 scenarios held. Did not hold: b.",
    ]
    assert "- an older run, by hand" in lines
