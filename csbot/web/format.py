"""Small pure helpers the pages share: timestamps, scores, shares, durations and devices as people
read them, the id of a clicked row, the non-blank lines of a text box.

Every function here takes plain values (and the page's `Words`) and returns plain values: no
gradio components, no store, no engine. Formatting that belongs to one tab lives in that tab's
module; the words come from the staff language's `staff` and `admin` sections
(csbot/languages/<code>/staff.yaml and admin.yaml).
"""

from csbot.errors import DataError
from csbot.language import Words


def when(stamp: str | None, *, seconds: bool = False) -> str:
    """A stored UTC stamp as a table cell, to the minute (or the second).

    Example: when("2025-02-01T10:00:59.123+00:00") -> "2025-02-01 10:00"; with seconds=True -> "2025-02-01 10:00:59";
    when(None) -> ""
    """
    return (stamp or "")[:19 if seconds else 16].replace("T", " ")


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


def eta(seconds: float | None, words: Words | None = None) -> str:
    """A duration for people.

    Example: eta(65) -> "1 min 05 s"; eta(4.2) -> "4 s"; eta(3725) -> "1 h 02 min"; eta(None) -> "–"
    """
    words = words or Words.load("en")
    if seconds is None:
        return "–"
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return words.say("admin.seconds", s=seconds)
    if seconds < 3600:
        return words.say("admin.minutes", m=seconds // 60, s=f"{seconds % 60:02d}")
    return words.say("admin.hours", h=seconds // 3600, m=f"{seconds % 3600 // 60:02d}")


def percent(value: float | None) -> str:
    """Example: percent(0.9312) -> "93.1%"; percent(None) -> "–" """
    return "–" if value is None else f"{100 * value:.1f}%"


def device_label(kind: str, words: Words) -> str:
    """Example: device_label("cuda", words) -> "GPU (cuda)"; device_label("cpu", words) -> "CPU" """
    return words["admin.device_gpu"] if kind == "cuda" else words["admin.device_cpu"] if kind == "cpu" else kind


def one_of(words: Words, key: str, value: str | None) -> str:
    """A stored value's word if the language has one (key + "_" + value), else the value as it is.

    Example: one_of(words, "admin.status", "running") -> "running" (zh: "运行中"); one_of(words, "admin.status", "odd") -> "odd"
    """
    return words.texts.get(f"{key}_{value}", value or "")
