"""Small pure helpers the admin page's tabs share: durations, shares and devices as people read them.

Every function here takes plain values and returns plain strings: no gradio components, no store,
no engine. Formatting that belongs to one tab (the training status, a version's report, the
dashboard's figures, the accounts table) lives in that tab's module.
"""


def eta(seconds: float | None) -> str:
    """A duration for people.

    Example: eta(65) -> "1 min 05 s"; eta(4.2) -> "4 s"; eta(3725) -> "1 h 02 min"; eta(None) -> "–"
    """
    if seconds is None:
        return "–"
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def percent(value: float | None) -> str:
    """Example: percent(0.9312) -> "93.1%"; percent(None) -> "–" """
    return "–" if value is None else f"{100 * value:.1f}%"


def device_label(kind: str) -> str:
    """Example: device_label("cuda") -> "GPU (cuda)"; device_label("cpu") -> "CPU" """
    return "GPU (cuda)" if kind == "cuda" else "CPU" if kind == "cpu" else kind
