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
