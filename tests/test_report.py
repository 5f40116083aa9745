import math

import numpy as np
import pytest

from csbot.errors import DataError
from csbot.web import report
from csbot.web.report import confusion_image, per_intent_table, summary_rows


def metrics_of(**per_intent) -> dict:
    return {"per_intent": {name: dict(zip(("precision", "recall", "f1", "support"), values))
                           for name, values in per_intent.items()}}


def test_per_intent_table_puts_the_worst_first():
    table = per_intent_table(metrics_of(greeting=(1.0, 1.0, 1.0, 5), refund=(0.5, 1.0, 0.6667, 2),
                                        delivery=(0.0, 0.0, 0.0, 1), returns=(0.0, 0.0, 0.0, 4)))
    assert list(table.columns) == ["intent", "precision", "recall", "f1", "support"]
    # equal F1: the intent with more messages at stake first
    assert table["intent"].tolist() == ["returns", "delivery", "refund", "greeting"]
    assert table.loc[2, "f1"] == pytest.approx(0.6667) and table["support"].tolist() == [4, 1, 2, 5]


def test_per_intent_table_of_a_report_without_held_out_examples():
    table = per_intent_table({"accuracy": None, "macro_f1": None, "n": 0, "note": "no held-out examples"})
    assert table.empty and list(table.columns) == ["intent", "precision", "recall", "f1", "support"]


def test_confusion_image_is_an_rgb_picture_that_grows_with_the_labels():
    small = confusion_image(["a", "b", "c"], [[5, 1, 0], [0, 4, 0], [2, 0, 3]], title="v1")
    assert small.mode == "RGB" and small.size[0] >= 400 and small.size[1] >= 300
    n = 30
    big = confusion_image([f"intent_{i}" for i in range(n)],
                          [[9 if i == j else int(j == (i + 1) % n) for j in range(n)] for i in range(n)])
    assert big.size[0] > small.size[0] * 1.5 and big.size[1] > small.size[1] * 1.5
    assert len(small.getcolors(maxcolors=1 << 20)) > 2  # drawn, not blank


def test_counts_are_written_only_in_small_matrices():
    # row-normalised colours are the same for 5 and 50; only the written counts tell them apart
    labels = ["a", "b"]
    assert confusion_image(labels, [[5, 0], [0, 5]]).tobytes() != confusion_image(labels, [[50, 0], [0, 50]]).tobytes()
    labels = [f"i{k}" for k in range(21)]
    few = [[5 * (i == j) for j in range(21)] for i in range(21)]
    many = [[50 * (i == j) for j in range(21)] for i in range(21)]
    assert confusion_image(labels, few).tobytes() == confusion_image(labels, many).tobytes()


@pytest.mark.parametrize("labels, matrix", [
    (["a", "b"], [[1, 0], [0]]),            # ragged
    (["a", "b"], [[1, 0, 0], [0, 1, 0]]),   # not square
    (["a", "b", "c"], [[1, 0], [0, 1]]),    # square, but not the labels' size
    ([], []),
    (["a"], [[-1]]),
])
def test_confusion_image_rejects_a_bad_matrix(labels, matrix):
    with pytest.raises(DataError):
        confusion_image(labels, matrix)


def test_summary_rows_from_the_store(store):
    store.add_model_version({"id": "v1", "path": "/m/v1", "created_at": "2026-11-27T09:05:00.000+00:00",
                             "metrics": {"accuracy": 0.8, "macro_f1": 0.75, "accepted": 0.9,
                                         "accepted_precision": 0.95}, "threshold": 0.4, "device": "cpu",
                             "train_seconds": 12.5})
    store.add_model_version({"id": "v2", "path": "/m/v2", "created_at": "2026-11-28T18:31:19.123+00:00",
                             "metrics": {"accuracy": None, "n": 0, "note": "no held-out examples"},
                             "threshold": 0.5, "device": "cuda", "train_seconds": 3.0})
    store.set_current_model("v1")
    table = summary_rows(store.model_versions())
    assert list(table.columns) == ["version", "created", "current", "accuracy", "macro_f1", "accepted",
                                   "accepted_precision", "threshold", "device", "train_seconds"]
    assert table["version"].tolist() == ["v2", "v1"]  # newest first, as the store returns them
    assert table["created"].tolist() == ["2026-11-28 18:31", "2026-11-27 09:05"]
    assert table["current"].tolist() == [False, True]
    v1 = table.iloc[1]
    assert (v1["accuracy"], v1["macro_f1"], v1["accepted"], v1["accepted_precision"]) == (0.8, 0.75, 0.9, 0.95)
    assert (v1["threshold"], v1["device"], v1["train_seconds"]) == (0.4, "cpu", 12.5)
    assert math.isnan(table.iloc[0]["accuracy"]) and math.isnan(table.iloc[0]["macro_f1"])
    assert summary_rows([]).empty


def test_the_curve_picture_and_table_show_the_trade_off_and_the_serving_point():
    from csbot.nlu.calibration import operating_curve

    rng = np.random.default_rng(3)
    score = rng.normal(3, 1, 200)
    correct = score + rng.normal(0, 1, 200) > 1.5  # the better scored are more often right
    curve = operating_curve(score, correct, rng.normal(1, 1, 40))
    point = {"threshold": float(np.quantile(score, 0.1)), "accepted": 0.9, "precision": 0.95}
    image = report.curve_image(curve, point, title="v1")
    assert image.mode == "RGB" and image.size == (700, 420)
    marked = np.asarray(image)
    assert (marked.min(axis=2) < 40).sum() > (np.asarray(report.curve_image(curve)).min(axis=2) < 40).sum()  # the black dot
    table = report.curve_table(curve)
    assert list(table.columns) == ["threshold", "accepted", "precision", "oos_accepted"]
    assert list(table["accepted"]) == [0.8, 0.85, 0.9, 0.95, 1.0] and table["threshold"].is_monotonic_decreasing
    with pytest.raises(DataError, match="no trade-off curve"):
        report.curve_image({"points": []})


def test_a_report_in_chinese_has_chinese_headings_and_its_pictures_draw():
    from csbot.language import Words

    zh = Words.load("zh")
    assert list(per_intent_table(metrics_of(a=(1.0, 1.0, 1.0, 3)), words=zh).columns) == [
        "意图", "精确率", "召回率", "F1", "样本数"]
    assert list(summary_rows([], words=zh).columns)[:3] == ["版本", "创建时间", "当前"]
    curve = {"points": [{"accepted": 0.9, "threshold": 3.2, "precision": 0.97, "oos_accepted": 0.1}]}
    assert list(report.curve_table(curve, words=zh).columns) == ["阈值", "接受比例", "精确率", "范围外接受比例"]
    # labelled in Chinese where a font can draw it, else in English rather than with empty boxes
    drawn = report.picture_words(zh)
    assert drawn.language == ("zh" if len(report._fonts()[0]) > 1 else "en")
    assert report.curve_image(curve, {"accepted": 0.9, "precision": 0.97, "threshold": 3.2}, words=zh).size == (700, 420)
    assert confusion_image(["a", "b"], [[3, 1], [0, 2]], words=zh).mode == "RGB"
