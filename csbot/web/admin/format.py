"""Small pure helpers the admin page's tabs share: durations, shares and devices as people read them.

Every function here takes plain values (and the page's `Words`) and returns plain strings: no
gradio components, no store, no engine. Formatting that belongs to one tab (the training status, a
version's report, the dashboard's figures, the accounts table) lives in that tab's module; the
words come from the staff language's `admin` section (csbot/languages/<code>/admin.yaml).
"""

from csbot.language import Words


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
