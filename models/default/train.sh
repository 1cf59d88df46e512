#!/usr/bin/env bash
# Reproduces the embedded default model (models/default/model.gguf) from ../shared/data, on CPU.
# Run from the repository root: bash models/default/train.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
slm() { dotnet run --project src/SlmKit.Cli -c Release -- "$@"; }

# 1. A 2048-token byte-level BPE tokenizer learned from the same TinyStories text.
slm tokenizer train --input ../shared/data/tinystories/tinystories_val_head.txt \
  --vocab-size 2048 --kind byte-bpe --out models/default/tokenizer

# 2. Pre-training (config: models/default/train.json; seed inside).
slm train --config models/default/train.json --json | tee models/default/training-result.json

# 3. Keep the exported model and its training log; drop the checkpoint and the HF copy.
cp models/default/run/model.gguf models/default/model.gguf
cp models/default/run/metrics.csv models/default/metrics.csv
cp models/default/run/loss.png models/default/loss.png
rm -rf models/default/run
