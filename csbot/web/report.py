"""A model version's evaluation report for the admin page: the per-intent table (worst first),
a confusion-matrix picture, the threshold's trade-off curve with the operating point marked, and
one summary row per version.

It reads the `metrics` dicts that training.evaluate wrote and store.model_versions returns.
It does not evaluate anything, nor touch the store or the disk. Pictures are drawn with
matplotlib's Agg canvas on a bare `Figure`, never through pyplot: pyplot keeps a global registry
of figures that is not thread-safe and leaks figures that nobody closes, and web handlers run in threads.

Headers and the pictures' labels come from the `report` section of the page's `Words` (English
when none is given); the data in them (intents, version ids, figures) shows as it is. A picture is
labelled in English where no installed font can draw the language's labels (matplotlib ships no
Chinese font), rather than with empty boxes.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from PIL import Image

from csbot.errors import DataError
from csbot.language import Words
from csbot.web.format import when

MAX_ANNOTATED = 20  # above this many labels, counts in cells would overlap; the colours tell the story
# Fonts that draw Chinese, tried after matplotlib's own DejaVu Sans (which has no CJK glyphs).
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "Microsoft YaHei", "PingFang SC", "SimHei")
PICTURE_KEYS = ("predicted_intent", "true_intent", "share_of_true", "precision_line", "oos_line", "serving",
                "accepted_axis")


@cache
def _fonts() -> tuple[tuple[str, ...], frozenset[int]]:
    """The installed font families the pictures draw with, and every character one of them has.

    Example: with only matplotlib's own fonts -> (("DejaVu Sans",), frozenset({32, 33, ...}))
    """
    families, drawable = [], set()
    for family in ("DejaVu Sans", *CJK_FONTS):
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:  # not installed
            continue
        families.append(family)
        drawable |= set(FT2Font(path).get_charmap())
    return tuple(families), frozenset(drawable)


def picture_words(words: Words | None) -> Words:
    """`words` if the installed fonts can draw its picture labels, else English.

    Example: picture_words(Words.load("zh")) -> the zh words where a Chinese font is installed, else the en ones
    """
    words = words or Words.load("en")
    drawable = _fonts()[1]
    labels = "".join(words[f"report.{key}"] for key in PICTURE_KEYS)
    return words if all(ord(ch) in drawable for ch in labels if not ch.isspace()) else Words.load("en")


def per_intent_table(metrics: dict, *, words: Words | None = None) -> pd.DataFrame:
    """One row per intent, the worst F1 first (ties: the larger support first, then by name), under
    `words`' headers (English: intent, precision, recall, f1, support).

    Example: {"per_intent": {"a": {"precision": 1, "recall": 1, "f1": 1, "support": 3},
                             "b": {"precision": 0.5, "recall": 1, "f1": 0.67, "support": 1}}}
             -> intent ["b", "a"]
    """
    columns = ["intent", "precision", "recall", "f1", "support"]
    rows = [{"intent": intent, **{c: values.get(c) for c in columns[1:]}}
            for intent, values in (metrics.get("per_intent") or {}).items()]
    table = pd.DataFrame(rows, columns=columns).astype(
        {"precision": "float64", "recall": "float64", "f1": "float64", "support": "int64"})
    table = table.sort_values(["f1", "support", "intent"], ascending=[True, False, True],
                              kind="stable").reset_index(drop=True)
    return table.set_axis((words or Words.load("en"))["report.per_intent_headers"], axis="columns")


def _checked(labels: list[str], matrix: list[list[int]]) -> np.ndarray:
    n = len(labels)
    if n == 0:
        raise DataError("the confusion matrix has no labels; evaluate on at least one held-out example")
    shapes = [len(row) for row in matrix]
    if len(matrix) != n or any(s != n for s in shapes):
        raise DataError(f"the confusion matrix must be {n} x {n} to match its {n} labels; found {len(matrix)} "
                        f"rows of lengths {sorted(set(shapes))}; pass the labels and matrix of the same report")
    counts = np.asarray(matrix, dtype=float)
    if (counts < 0).any():
        raise DataError("the confusion matrix holds negative counts; pass the counts from the evaluation report")
    return counts


def confusion_image(labels: list[str], matrix: list[list[int]], *, title: str = "",
                    words: Words | None = None) -> Image.Image:
    """The confusion matrix as an RGB picture: rows are the true intent, columns the predicted one.

    A cell's colour is its share of its row (of the messages truly of that intent, how many went
    where) on a square-root scale, so a 3% confusion is visible beside a 97% diagonal, and a
    rare intent's errors show as clearly as a common one's. Counts are written in the cells
    when there are at most 20 labels. The figure and font sizes grow with the label count.
    Example: confusion_image(["a", "b"], [[3, 1], [0, 2]]).size -> (450, 400); 80 labels -> about (1900, 1830)
    """
    counts = _checked(labels, matrix)
    words, families = picture_words(words), _fonts()[0]
    n = len(labels)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    longest = max(len(str(label)) for label in labels)
    font = float(np.clip(11 - n / 10, 5, 10))
    # cells of about 0.28 in (0.2 in past 40 labels), plus room for the longest label on two sides
    cells = n * (0.28 if n <= 40 else 0.2)
    margin = 1.2 + longest * font / 72 * 0.62
    fig = Figure(figsize=(max(4.5, cells + margin + 1.2), max(4.0, cells + margin + (0.4 if title else 0))),
                 dpi=100, layout="constrained")
    try:
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        image = ax.imshow(shares, cmap="Blues", norm=PowerNorm(gamma=0.5, vmin=0, vmax=1), aspect="equal",
                          interpolation="nearest")
        ax.set_xticks(range(n), [str(label) for label in labels], rotation=90, fontsize=font, fontfamily=families)
        ax.set_yticks(range(n), [str(label) for label in labels], fontsize=font, fontfamily=families)
        ax.set_xlabel(words["report.predicted_intent"], fontsize=font + 1, fontfamily=families)
        ax.set_ylabel(words["report.true_intent"], fontsize=font + 1, fontfamily=families)
        if title:
            ax.set_title(title, fontsize=font + 2, fontfamily=families)
        if n <= MAX_ANNOTATED:
            for (i, j), count in np.ndenumerate(counts):
                if count:  # blank zeros keep the few errors easy to spot
                    ax.text(j, i, f"{count:g}", ha="center", va="center", fontsize=font,
                            color="white" if shares[i, j] > 0.35 else "black")  # dark cells on the sqrt scale
        bar = fig.colorbar(image, ax=ax, shrink=0.8)
        bar.set_label(words["report.share_of_true"], fontsize=font, fontfamily=families)
        bar.ax.tick_params(labelsize=font)
        canvas.draw()
        width, height = canvas.get_width_height()
        return Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    finally:
        fig.clear()  # drop the artists now rather than whenever the collector gets to them


def summary_rows(versions: list[dict], *, words: Words | None = None) -> pd.DataFrame:
    """One row per model version from store.model_versions(), in the order given (newest first),
    under `words`' headers (English: the names below).

    Metrics a version lacks (e.g. it had no held-out examples) are left empty (NaN).
    Example: [{"id": "v1", "created_at": "2026-11-28T18:31:19.123+00:00", "is_current": 1,
               "metrics": {"accuracy": 0.9}, ...}] -> version "v1", created "2026-11-28 18:31", current True
    """
    columns = ["version", "created", "current", "accuracy", "macro_f1", "accepted", "accepted_precision",
               "threshold", "device", "train_seconds"]
    rows = []
    for v in versions:
        metrics = v.get("metrics") or {}
        rows.append({"version": v["id"], "created": when(v.get("created_at")),
                     "current": bool(v.get("is_current")),
                     **{k: metrics.get(k) for k in ("accuracy", "macro_f1", "accepted", "accepted_precision")},
                     "threshold": v.get("threshold"), "device": v.get("device"),
                     "train_seconds": v.get("train_seconds")})
    numeric = ["accuracy", "macro_f1", "accepted", "accepted_precision", "threshold", "train_seconds"]
    table = pd.DataFrame(rows, columns=columns).astype({**{c: "float64" for c in numeric}, "current": "bool"})
    return table.set_axis((words or Words.load("en"))["report.summary_headers"], axis="columns")


def curve_image(curve: dict, point: dict | None = None, *, title: str = "",
                words: Words | None = None) -> Image.Image:
    """The threshold's trade-off (calibration.operating_curve) as a picture: precision of the
    accepted, and known out-of-scope questions accepted when there are any, against the share of
    held-out messages accepted; the operating point that serves is marked.

    Example: curve_image({"points": [{"accepted": 0.9, "precision": 0.98, "oos_accepted": None}, ...]},
                         {"accepted": 0.9, "precision": 0.98}).size -> (700, 420)
    """
    points = sorted(curve.get("points") or [], key=lambda p: p["accepted"])
    if not points:
        raise DataError("this version has no trade-off curve; retrain it to get one")
    words, families = picture_words(words), _fonts()[0]
    fig = Figure(figsize=(7, 4.2), dpi=100, layout="constrained")
    try:
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        x = [100 * p["accepted"] for p in points]
        ax.plot(x, [100 * p["precision"] for p in points], color="tab:blue",
                label=words["report.precision_line"])
        if any(p.get("oos_accepted") is not None for p in points):
            ax.plot(x, [100 * (p.get("oos_accepted") or 0) for p in points], color="tab:red",
                    label=words["report.oos_line"])
        if point and point.get("accepted") is not None:
            ax.axvline(100 * point["accepted"], color="grey", linestyle="--", linewidth=1)
            if point.get("precision") is not None:
                ax.plot([100 * point["accepted"]], [100 * point["precision"]], "o", color="black",
                        label=words.say("report.serving", threshold=f"{point['threshold']:.2f}"))
        ax.set_xlabel(words["report.accepted_axis"], fontfamily=families)
        ax.set_ylabel("%")
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", prop={"family": list(families), "size": 8})
        if title:
            ax.set_title(title, fontsize=10, fontfamily=families)
        canvas.draw()
        width, height = canvas.get_width_height()
        return Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    finally:
        fig.clear()


def curve_table(curve: dict, shares: tuple[float, ...] = (0.8, 0.85, 0.9, 0.95, 1.0), *,
                words: Words | None = None) -> pd.DataFrame:
    """The curve at a few acceptance shares, as the report's table: threshold, accepted, precision,
    out-of-scope accepted (empty when the store had no known out-of-scope questions), under `words`' headers.

    Example: curve_table({"points": [{"accepted": 0.9, "threshold": 3.2, "precision": 0.97, "oos_accepted": 0.1}]},
                         (0.9,)) -> one row: 3.2, 0.9, 0.97, 0.1
    """
    points = sorted(curve.get("points") or [], key=lambda p: p["accepted"])
    rows = []
    for share in shares:
        found = next((p for p in points if p["accepted"] >= share - 1e-9), None)
        if found and (not rows or rows[-1]["threshold"] != found["threshold"]):
            rows.append({k: found.get(k) for k in ("threshold", "accepted", "precision", "oos_accepted")})
    table = pd.DataFrame(rows, columns=["threshold", "accepted", "precision", "oos_accepted"]).astype("float64")
    return table.set_axis((words or Words.load("en"))["report.curve_headers"], axis="columns")
