"""Where one message's time goes, PyTorch beside ONNX Runtime: cProfile over `Bot.respond` on a
trained home, one message at a time, the cumulative time of each stage per message.

    python benchmarks/profile_message.py --home DIR [--messages 300]

Each runtime is profiled in a child process of its own (`--runtime`), the same messages in the
same order. Stages are functions of csbot and its libraries, so they overlap as calls nest:
"classifier pass" holds its tokenising, "answer search" holds the answer encoder's pass. cProfile
slows Python code more than native code, so the Python stages read high; the wall clock per
message is measured without the profiler. Figures go to benchmarks/results/profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# stage -> (file fragment, function name) as cProfile names them
STAGES = {
    "respond (whole message)": ("csbot/dialogue/bot.py", "respond"),
    "store: conversation read": ("csbot/store/conversations.py", "conversation"),
    "store: customer message write": ("csbot/store/conversations.py", "add_message"),
    "store: reply write": ("csbot/store/conversations.py", "record_reply"),
    "understand (both passes)": ("csbot/dialogue/bot.py", "_understand_batch"),
    "classifier pass": ("csbot/nlu/intents.py", "_pass"),
    "classifier: PyTorch forward": ("csbot/nlu/network.py", "embed"),
    "tokenise, transformers (both encoders)": ("transformers/tokenization_utils_base.py", "__call__"),
    "tokenise, tokenizers (both encoders)": ("csbot/nlu/tokens.py", "__call__"),
    "ONNX Runtime run (both encoders)": ("onnxruntime/capi/onnxruntime_inference_collection.py", "run"),
    "answer search (encode + FAISS), beside the classifier": ("csbot/dialogue/answers.py", "search_many"),
    "answer encoder": ("csbot/dialogue/answers.py", "_vectors"),
    "acceptance score (kNN)": ("csbot/nlu/intents.py", "scores"),
    "entities": ("csbot/dialogue/entities.py", "extract"),
    "route and template": ("csbot/dialogue/bot.py", "_route"),
}


def child(home: str, runtime: str, messages: int) -> dict:
    from csbot.importer import read_logs
    from csbot.service.engine import Engine
    from csbot.settings import load_settings

    bot = Engine(load_settings(home=home, runtime=runtime)).bot
    bot.warm_up()
    pool = [r["text"] for r in read_logs(ROOT / "data" / "support_log.csv")]
    texts = [random.Random(7).choice(pool) for _ in range(messages)]
    for text in texts[:20]:
        bot.respond(text, None, channel="benchmark")
    started = time.perf_counter()
    for text in texts:
        bot.respond(text, None, channel="benchmark")
    wall = (time.perf_counter() - started) / messages * 1000
    # The passes run in the micro-batcher's worker thread (batching.py) and the answer search in
    # a helper thread beside it (bot.py), which a profiler enabled here would not see: each of
    # those threads' calls gets a profiler of its own.
    profile, worker, helper = cProfile.Profile(), cProfile.Profile(), cProfile.Profile()
    understand, search = bot._understand.fn, bot.index.search_many
    bot._understand.fn = lambda items: worker.runcall(understand, items)
    bot.index.search_many = lambda texts, **kw: helper.runcall(search, texts, **kw)
    profile.enable()
    for text in texts:
        bot.respond(text, None, channel="benchmark")
    profile.disable()
    bot._understand.fn = understand
    del bot.index.search_many
    stats = pstats.Stats(profile).add(worker).add(helper).stats
    stages = {}
    for stage, (fragment, name) in STAGES.items():
        total = sum(v[3] for (file, _, func), v in stats.items() if func == name and file.endswith(fragment))
        stages[stage] = round(total / messages * 1000, 3)
    return {"runtime": runtime, "messages": messages, "wall_ms_per_message": round(wall, 2),
            "profiled_ms_per_message": stages,
            "classifier": bot.classifier.runtime_name if bot.classifier else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--runtime", choices=["onnx", "torch"], help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args()
    if args.runtime:
        print(json.dumps(child(args.home, args.runtime, args.messages)))
        return 0
    results = {}
    for runtime in ("torch", "onnx"):
        out = subprocess.run([sys.executable, __file__, "--home", args.home, "--messages", str(args.messages),
                              "--runtime", runtime], check=True, capture_output=True, text=True).stdout
        results[runtime] = json.loads(out.strip().splitlines()[-1])
    (ROOT / "benchmarks" / "results" / "profile.json").write_text(json.dumps(results, indent=2))
    t, o = results["torch"], results["onnx"]
    print(f"| ms per message ({args.messages} messages) | PyTorch | ONNX Runtime |\n|---|---|---|")
    print(f"| wall clock, no profiler | {t['wall_ms_per_message']} | {o['wall_ms_per_message']} |")
    for stage in STAGES:
        print(f"| {stage} | {t['profiled_ms_per_message'][stage]} | {o['profiled_ms_per_message'][stage]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
