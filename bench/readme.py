"""Benchmarks rewrite their own section of bench/README.md, between two marker comments."""

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(start: str, end: str, markdown: str, readme: Path = README) -> None:
    """Replace what lies between the markers (or append the section when they are missing)."""
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    section = f"{start}\n{markdown}\n{end}"
    if start in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    readme.write_text(text)
