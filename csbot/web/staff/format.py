"""Small pure helpers the staff page's tabs share: timestamps and scores as table cells, the id of a
clicked row, the non-blank lines of a text box.

Every function here takes plain values and returns plain values: no gradio components, no store,
no engine. Formatting that belongs to one tab lives in that tab's module; the words come from the
staff language's `staff` section (csbot/languages/<code>/staff.yaml).
"""

from csbot.errors import DataError
from csbot.language import Words


def when(stamp: str | None) -> str:
    """Example: when("2025-02-01T10:00:59.123+00:00") -> "2025-02-01 10:00"; when(None) -> "" """
    return (stamp or "")[:16].replace("T", " ")


def number(value: float | None) -> str:
    """Example: number(0.81234) -> "0.81"; number(None) -> "" """
    return "" if value is None else f"{value:.2f}"


def picked_id(evt, words: Words) -> int:
    """The id in the first cell of the clicked table row, or a DataError saying (in `words`) to pick a row.

    Example: a click on the row ["42", "2026-11-28 10:00", ...] -> 42; a click on an empty table -> DataError
    """
    try:
        return int(evt.row_value[0])
    except (TypeError, ValueError, IndexError):
        raise DataError(words["staff.pick_row"]) from None


def lines(text: str | None) -> list[str]:
    """Example: lines(" a \\n\\n b") -> ["a", "b"]"""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]
