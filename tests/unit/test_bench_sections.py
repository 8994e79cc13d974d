"""bench/sections.py: a benchmark rewrites only its own numbered sections of BENCHMARKS.md."""

from pathlib import Path

from bench.sections import split, write_sections

FILE = "# Benchmarks\n\nMachine: x\n\n## 1. One\n\nold one\n\n## 5. Five\n\nold five\n\n## 7. Seven\n\nold seven\n"


def test_one_section_is_replaced_and_the_others_kept_in_number_order(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(FILE)
    write_sections("## 5. Five\n\nnew five\n", path)
    head, sections = split(path.read_text())
    assert head == "# Benchmarks\n\nMachine: x\n\n"
    assert sections == {
        1: "## 1. One\n\nold one\n",
        5: "## 5. Five\n\nnew five\n",
        7: "## 7. Seven\n\nold seven\n",
    }


def test_a_new_section_lands_in_its_place_and_a_new_preamble_replaces_the_old(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(FILE)
    write_sections("# Benchmarks\n\nMachine: y\n\n## 1. One\n\nnew one\n\n## 6. Six\n\nsix\n", path)
    text = path.read_text()
    assert "Machine: y" in text
    assert "Machine: x" not in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## 1. One", "## 5. Five", "## 6. Six", "## 7. Seven"
    ]  # fmt: skip
    assert "new one" in text
    assert "old one" not in text
    assert "old seven" in text


def test_a_missing_file_starts_with_a_title(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_sections("## 7. Seven\n\nseven\n", path)
    assert path.read_text() == "# Benchmarks\n\n## 7. Seven\n\nseven\n"
