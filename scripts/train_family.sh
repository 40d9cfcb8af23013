#!/usr/bin/env bash
# Train -- or continue training -- the whole built-in codex-mini family in one command.
#
# Builds (or reuses) the decontaminated corpus cache, then trains every size in turn, small to
# large, each for its own wall-clock budget, and refreshes data/loss_scaling.csv + fit (only
# without OUT: a family trained elsewhere does not rewrite the shipped one's table). On a lent
# GPU machine use scripts/gpu_train.sh instead (corpus + both stages of every size in one call,
# sizes concurrent, parts sized for the device tool).
#
# Environment knobs (all optional):
#   BUDGET_SCALE  multiply each size's preset CPU minutes (v2: 0.2m: 10, 1.2m: 20, 4.7m: 45,
#                 14m: 120, 22m: 180; `codexlab train --list`); default 1.0
#   TIME_BUDGET   seconds per size instead (the same for every size)
#   RESUME=1      continue from the weights in the output folder (keeps their tokenizer)
#   OUT           train in this folder instead of data/models; with RESUME=1 the shipped models
#                 are copied there first (use OUT=$OUT/models on the GPU machine)
#   PACK_TO       after training, tar the trained model folders into this folder as parts of
#                 at most 15 MiB (codex-mini-models.tar.part-aa, -ab, ...): the device tool
#                 returns few, small files. Unpack with
#                 `cat codex-mini-models.tar.part-* | tar -xf - -C data/models`, then
#                 `codexlab train --scaling-only`.
#   NICE          niceness (default 19 on CPU-only machines, 0 with a GPU)
#   PYTHON        interpreter (default .venv/bin/python, else python3)
# Any further arguments go to `codexlab train` (e.g. --batch-size 64 --sizes codex-mini-1.2m,
# --tokenizer data/tokenizer/codex-mini-v2.json to keep the shipped BPE, --stage functions).
#
# Examples:
#   scripts/train_family.sh --sizes codex-mini-0.2m,codex-mini-1.2m   # the small CPU sizes
#   RESUME=1 TIME_BUDGET=600 scripts/train_family.sh   # 10 more minutes for every shipped size
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ -z "${NICE:-}" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1; then NICE=0; else NICE=19; fi
fi

args=(train --family)
if [[ -n "${TIME_BUDGET:-}" ]]; then
  args+=(--time-budget "$TIME_BUDGET")
else
  args+=(--budget-scale "${BUDGET_SCALE:-1.0}")
fi
if [[ "${RESUME:-0}" == "1" ]]; then
  args+=(--resume)
else
  # Training the family anew replaces the models in the output folder: say so explicitly
  # (`codexlab train` refuses a folder that holds a model otherwise).
  args+=(--overwrite)
fi
if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  if [[ "${RESUME:-0}" == "1" ]]; then
    for d in data/models/codex-mini-*; do
      [[ -d "$d" && ! -e "$OUT/$(basename "$d")" ]] && cp -r "$d" "$OUT/"
    done
  fi
  args+=(--out "$OUT")
fi

echo "[train_family] $(date -u +%FT%TZ) nice $NICE: $PYTHON -m codexlab ${args[*]} $*" >&2
nice -n "$NICE" "$PYTHON" -m codexlab "${args[@]}" "$@"

if [[ -n "${PACK_TO:-}" ]]; then
  src=${OUT:-data/models}
  mkdir -p "$PACK_TO"
  (cd "$src" && tar -cf - codex-mini-*) | split -b 15m - "$PACK_TO/codex-mini-models.tar.part-"
  ls -l "$PACK_TO"/codex-mini-models.tar.part-* >&2
fi
