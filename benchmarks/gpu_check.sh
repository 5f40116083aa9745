#!/usr/bin/env bash
# The GPU training check, run on a lent GPU machine through the device tool (never in CI).
# That machine has torch, transformers and sentence-transformers but not our other packages, and
# only 64 MiB travels, so two ignored folders are carried with the working tree:
#   .basemodel/minilm  the default base model as an fp16 copy (csbot loads it into fp32 weights)
#   .bench/            BANKING77 train.csv and test.csv, copied from ../shared/benchmarks/banking77
# Usage there: OUT=/some/folder bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 CSBOT_DEVICE=cuda CSBOT_BASE_MODEL=.basemodel/minilm
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"
# 1. the default demo data (1,975 messages, 32 intents): csbot train's code and defaults
python3 -m csbot evaluate --train data/support_log.csv --test data/support_log.csv --home "$(mktemp -d)" \
    --json "$OUT/default_data.json" 2>&1 | tail -3
# 2. BANKING77, all 77 intents and with 19 intents held out (the same script as on the CPU)
python3 benchmarks/banking77.py --data .bench 2>&1 | grep -v '^\[' | tail -4
cp benchmarks/results/banking77_full.json "$OUT/banking77_full_gpu.json"
cp benchmarks/results/banking77_oos.json "$OUT/banking77_oos_gpu.json"
# 3. the training worker on BANKING77 (one GPU): a queued run claimed by `python -m csbot worker
#    --once` from a SQLite home, the way a web replica with CSBOT_TRAINING=worker hands it over.
#    Needs the store's packages (sqlite-utils, faiss); skipped with a note when the machine lacks them.
if python3 -c "import sqlite_utils, faiss" 2>/dev/null; then
  home=$(mktemp -d)
  python3 -m csbot init --home "$home" >/dev/null
  python3 - "$home" <<'PY'
import csv, json, sys
from csbot.settings import load_settings
from csbot.store import Store
home = sys.argv[1]
store = Store.from_settings(load_settings(home=home))
with open(".bench/train.csv", newline="", encoding="utf-8") as f:
    rows = [{"text": r["text"], "intent": r["category"]} for r in csv.DictReader(f)]
store.db.execute("DELETE FROM examples")
store.add_examples(rows, source="banking77")
store.start_job(kind="train", device="worker", options=json.dumps({"user": "gpu_check"}), at=0, stale_before=-1, queued=True)
PY
  start=$(date +%s.%N)
  CSBOT_TRAINING=worker python3 -m csbot worker --once --home "$home" 2>&1 | tail -2
  echo "worker BANKING77 training on one GPU: $(echo "$(date +%s.%N) - $start" | bc) s" | tee "$OUT/worker.txt"
else
  echo "worker step skipped: this machine lacks sqlite-utils or faiss" | tee "$OUT/worker.txt"
fi
