"""How long push takes to decide what an edit of a reviewed document touches (review/edits.py
TextEdit: prefix/suffix trim, then lines, then words), against a bare character diff
(difflib.SequenceMatcher on the two strings, autojunk off) measured in the same run. Prints
one row per case: size, changed regions found, ms for TextEdit and for the bare diff (the bare
diff only up to BARE_LIMIT characters: it is quadratic).

    .venv/bin/python -m bench.edits"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable

from review.edits import TextEdit

BARE_LIMIT = 40_000


def _paragraphs(n: int) -> str:
    return "\n\n".join(
        f"Paragraph {i}: the ministers met in Brussels on Monday and Berlin on Tuesday. " * 4
        for i in range(n)
    )


def _every(text: str, k: int, change: Callable[[str], str]) -> str:
    parts = text.split("\n\n")
    return "\n\n".join(change(p) if i % k == 0 else p for i, p in enumerate(parts))


def cases() -> list[tuple[str, str, str]]:
    small, large = _paragraphs(40), _paragraphs(600)
    return [
        ("one word, 13k chars", small, small.replace("Tuesday", "Friday", 1)),
        ("ends rewritten, 13k", small, "New intro.\n\n" + small[40:-40] + " New end."),
        ("every 10th paragraph, 13k", small, _every(small, 10, lambda p: p.replace("met", "sat"))),
        ("one word, 200k chars", large, large.replace("Tuesday", "Friday", 1)),
        ("every 10th paragraph, 200k", large, _every(large, 10, lambda p: "Rewritten.")),
        (
            "one 200k line, ends edited",
            large.replace("\n", " "),
            "X" + large.replace("\n", " ")[1:-1] + "Y",
        ),
    ]


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    print(f"{'case':<30} {'chars':>8} {'changes':>8} {'TextEdit ms':>12} {'bare diff ms':>13}")
    for name, old, new in cases():
        edit = TextEdit(old, new)
        ours = _ms(lambda o=old, n=new: TextEdit(o, n))  # type: ignore[misc]
        bare = f"{'(skipped)':>13}"
        if len(old) <= BARE_LIMIT:
            chars = difflib.SequenceMatcher(None, old, new, autojunk=False)
            bare = f"{_ms(chars.get_opcodes):13.1f}"
        print(f"{name:<30} {len(old):>8} {len(edit.changes):>8} {ours:12.1f} {bare}")


if __name__ == "__main__":
    main()
