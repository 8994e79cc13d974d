"""BENCHMARKS.md is written a section at a time.

Each benchmark owns numbered sections (``## N. Title``). Writing replaces the sections a report holds
(and the file's preamble when the report has one) and keeps every other section, in number order, so
``python -m bench.corpus`` or ``python -m bench.run fanout`` can rerun one section without losing the
rest.
"""

from __future__ import annotations

import re
from pathlib import Path

_HEADING = re.compile(r"^## (\d+)\. ", re.MULTILINE)


def split(text: str) -> tuple[str, dict[int, str]]:
    """The text before the first numbered section, and each section by its number."""
    found = list(_HEADING.finditer(text))
    if not found:
        return text, {}
    ends = [m.start() for m in found[1:]] + [len(text)]
    sections = {
        int(m.group(1)): text[m.start() : end].rstrip("\n") + "\n" for m, end in zip(found, ends, strict=True)
    }
    return text[: found[0].start()], sections


def write_sections(report: str, path: Path) -> None:
    """Replace the sections ``report`` holds (and the preamble if it starts with one), keep the others."""
    old_head, old = split(path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n")
    new_head, new = split(report)
    head = new_head if new_head.strip() else old_head
    merged = {**old, **new}
    path.write_text(head + "\n".join(merged[n] for n in sorted(merged)), encoding="utf-8")
