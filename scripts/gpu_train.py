"""Orchestration behind ``scripts/gpu_train.sh``: corpus, family training, packing, fetch, unpack.

Run it through the shell wrapper, which installs carried wheels and sets ``PYTHONPATH``; the
wrapper's header lists the environment knobs and explains the design (concurrent sizes).
Modes (first argument):

* ``train``: build the corpus v2 + function set, train every size (pretraining, then the
  function-level stage) as ``codexlab train`` processes within a wall-clock deadline, pack the
  model folders into tar parts, copy the first call's share to ``$OUT``;
* ``lane NAME START END`` (started by ``train``, one process per size): both stages of one
  size within the wall-clock window [START, END] (epoch seconds);
* ``sample END MODEL...`` (started by ``train`` after packing, when ``SAMPLE_S`` > 0): the
  card protocol's samples (:func:`codexlab.config.card_configs`, as
  ``scripts/record_humaneval_in_cards.py --measure`` draws them: pass@100 at T=0.8 with
  n=100, pass@1 at T=0.2 with n=20, paper settings) of the trained models, most important
  first, into ``$WORK/cards.sqlite`` until END; first a greedy check of the GPU path against
  the CPU path on a few tasks. The samples come back as parts too and are executed here;
* ``fetch``: copy call ``$PART``'s parts (and ``gpu_train.json``) from ``$WORK`` to ``$OUT``;
* ``unpack DIR...``: here, verify the parts found in the folders, unpack every complete model
  into ``$MODELS`` (default ``data/models``), then refresh the loss-scaling data.

What it is not for: training itself (``codexlab train`` does it), sampling itself (the
sampling engine does it) or executing samples (never on the GPU machine: here, in the sandbox).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
#: Files of every call besides the parts: the log and gpu_train.json.
RESERVED_FILES = 2
#: Bytes of every call kept for the log and gpu_train.json.
RESERVED_BYTES = 1 * MIB
META = "gpu_train.json"
LOG = "gpu_train.log"
#: Files never packed: the exact-resume state (fp32 weights + optimizer, several x the model).
SKIP_FILES = ("training_state.pt", "training_state.pt.tmp")
#: The folder (and part prefix) of the card-protocol samples drawn on the GPU machine.
CARDS = "cards-store"
#: Seconds kept after the card sampling for snapshotting and packing its store.
SAMPLE_PACK_S = 15.0


class Fail(Exception):
    """A one-line reason to stop with a non-zero exit status."""

    def __init__(self, reason: str, code: int = 1) -> None:
        super().__init__(reason)
        self.code = code


# -- settings ---------------------------------------------------------------------------------
def _env(name: str, default: str) -> str:
    return os.environ.get(name, "") or default


def _vocab_size(tokenizer: Path) -> int:
    """Return the vocabulary size training gives the models of a ``tokenizers`` JSON file."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer)).get_vocab_size()


def _weights_budget() -> int:
    """Return the shipped-weights budget in bytes: ``WEIGHTS_MB`` (default issue 10's 120)."""
    from codexlab.models.configs import WEIGHTS_BUDGET_BYTES

    raw = _env("WEIGHTS_MB", str(WEIGHTS_BUDGET_BYTES / 1e6))
    try:
        mb = float(raw)
    except ValueError:
        raise Fail(f"WEIGHTS_MB must be a number of MB, not {raw!r}", 2) from None
    if mb <= 0:
        raise Fail(f"WEIGHTS_MB must be > 0, not {raw!r}", 2)
    return int(mb * 1e6)


def weight_bytes(size: str, vocab_size: int) -> int:
    """Return the bf16 weights file size of a preset (tied embedding), header left out."""
    from codexlab.models.configs import SIZES

    return 2 * SIZES[size].total_params(vocab_size)


def _fate(meta: dict[str, Any], fresh: list[str], newest: int) -> str:
    """Say what the unpack does with a shipped model beside the ``fresh`` ones.

    ``"old_family"`` (removed: an older family version), ``"rebased_s"`` (removed: a Codex-S
    model whose base was retrained), ``"rebased"`` (kept: another variant of a retrained
    base, e.g. Codex-D) or ``"keep"``.
    """
    if int(meta.get("family_version") or 1) < newest:
        return "old_family"
    if meta.get("variant") and meta.get("base_model") in fresh:
        return "rebased_s" if meta["variant"] == "s" else "rebased"
    return "keep"


def kept_models(dest: Path, sizes: list[str]) -> dict[str, int]:
    """Return name -> weights bytes of the models in ``dest`` an unpack of ``sizes`` keeps.

    Those are the models it neither replaces (a size retrained, a Codex-S copy of one) nor
    retires (:func:`_retire_older_family`): e.g. a Codex-D model.
    """
    from codexlab.models.configs import FAMILY_VERSION

    out: dict[str, int] = {}
    for folder in sorted(dest.glob("codex-mini-*")) if dest.is_dir() else []:
        card = folder / "model_card.json"
        if folder.name in sizes or not card.exists():
            continue
        if _fate(json.loads(card.read_text()), sizes, FAMILY_VERSION) in ("keep", "rebased"):
            out[folder.name] = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    return out


def s_sizes_within(sizes: list[str], vocab_size: int, kept_bytes: int, budget: int) -> list[str]:
    """Return the sizes whose Codex-S copies fit ``budget`` beside the base family, small first.

    Greedy from the largest size down (the larger a Codex-S model, the more it shows), each
    copy taken while base models + copies + ``kept_bytes`` stay within ``budget`` bytes.
    Reproduces: the weights limit of issue 10 (all shipped weights <= 120 MB in git).
    """
    total = kept_bytes + sum(weight_bytes(s, vocab_size) for s in sizes)
    chosen = []
    for size in reversed(sizes):
        if total + weight_bytes(size, vocab_size) <= budget:
            total += weight_bytes(size, vocab_size)
            chosen.append(size)
    return chosen[::-1]


def weights_plan(sizes: list[str], s_sizes: list[str], vocab_size: int, kept: dict[str, int],
                 budget: int) -> str:
    """Return one line: the shipped weights after this run against the budget (MB = 1e6 B)."""
    base = sum(weight_bytes(s, vocab_size) for s in sizes)
    var = sum(weight_bytes(s, vocab_size) for s in s_sizes)
    total = base + var + sum(kept.values())
    line = (f"shipped weights after unpack: base {base / 1e6:.1f} MB + Codex-S "
            f"{var / 1e6:.1f} MB ({', '.join(s_sizes) or 'none'}) + kept "
            f"{sum(kept.values()) / 1e6:.1f} MB ({', '.join(kept) or 'none'}) = "
            f"{total / 1e6:.1f} MB of the {budget / 1e6:.0f} MB budget")
    return line + ("" if total <= budget else "  ** OVER BUDGET: set S_SIZES or WEIGHTS_MB **")


@dataclass
class Settings:
    """The knobs of a run, from the environment (see the wrapper's header)."""

    out: Path
    work: Path
    toy: bool
    total: float
    margin: float
    sizes: list[str]
    tokenizer: Path
    roots: list[str]
    max_files: str
    concurrent: bool
    batch: int
    seq: int
    lane_min_s: float
    func_share: float
    func_min_s: float
    func_epochs: float
    s_sizes: list[str]
    overhead: float
    min_stage_s: float
    compile: str
    device: str
    threads: str
    stage1_tokens: int | None
    stage2_tokens: int | None
    optimizer: str
    final: bool
    part_size: int
    call_files: int
    call_bytes: int
    t0: float
    sample_s: float = 0.0
    sample_models: list[str] = field(default_factory=list)
    sample_n: int = 100
    sample_n_low: int = 20
    sample_tasks: str = ""
    sample_compile: str = "no"
    check_tasks: int = 4
    weights_budget: int = 0
    weights_plan: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings; ``TOY=1`` changes the defaults to a seconds-long CPU run."""
        from codexlab.models.configs import SIZES

        toy = _env("TOY", "0") == "1"
        sizes = _env("SIZES", "codex-mini-0.2m,codex-mini-1.2m" if toy else ",".join(SIZES))
        s1 = _env("STAGE1_TOKENS", "2048" if toy else "")
        s2 = _env("STAGE2_TOKENS", "512" if toy else "")
        st = cls(
            out=Path(_env("OUT", "gpu-out")), work=Path(_env("WORK", "/tmp/codexlab-gpu")),
            toy=toy, total=float(_env("TOTAL", "540")), margin=float(_env("MARGIN", "40")),
            sizes=[s.strip() for s in sizes.split(",") if s.strip()],
            tokenizer=Path(_env("TOKENIZER", str(REPO / "data/tokenizer/codex-mini-v2.json"))),
            roots=[r for r in _env("ROOTS", "").split(os.pathsep) if r],
            # The corpus build is mostly single-threaded (reading, filters, MinHash) and its
            # time comes off training: measured here on 2 cores, 22k files (345 MB) took 47 s
            # to read and filter, 34 s of MinHash and ~3 min to tokenise; the GPU image's
            # Python holds several times that (torch, jax, scipy, ...). 20,000 kept files is
            # ~90 M tokens, more than the largest size sees in its window.
            max_files=_env("MAX_FILES", "" if toy else "20000"),
            concurrent=_env("CONCURRENT", "1") == "1",
            batch=int(_env("BATCH", "8" if toy else "128")),
            seq=int(_env("SEQ", "32" if toy else "512")),
            lane_min_s=float(_env("LANE_MIN_S", "150")),
            func_share=float(_env("FUNC_SHARE", "0.1")),
            func_min_s=float(_env("FUNC_MIN_S", "40")),
            func_epochs=float(_env("FUNC_EPOCHS", "2")),
            s_sizes=[],
            overhead=float(_env("OVERHEAD", "0" if toy else "15")),
            min_stage_s=float(_env("MIN_STAGE_S", "15")),
            compile=_env("COMPILE", "no" if toy else "auto"),
            device=_env("DEVICE", "cpu" if toy else "auto"),
            threads=_env("THREADS", "1" if toy else ""),
            stage1_tokens=int(float(s1)) if s1 not in ("", "none") else None,
            stage2_tokens=int(float(s2)) if s2 not in ("", "none") else None,
            optimizer=_env("OPTIMIZER", "muon"),
            final=_env("FINAL", "0" if toy else "1") == "1",
            part_size=int(float(_env("PART_SIZE", str(15 * MIB)))),
            call_files=int(_env("CALL_FILES", "8")),
            call_bytes=int(float(_env("CALL_BYTES", str(64 * MIB)))),
            t0=float(_env("GPU_TRAIN_T0", str(time.time()))),
            sample_s=float(_env("SAMPLE_S", "100")),
            sample_models=[m.strip() for m in _env("SAMPLE_MODELS", "").split(",") if m.strip()],
            sample_n=int(_env("SAMPLE_N", "2" if toy else "100")),
            sample_n_low=int(_env("SAMPLE_N_LOW", "1" if toy else "20")),
            sample_tasks=_env("SAMPLE_TASKS", "::82" if toy else ""),
            sample_compile=_env("SAMPLE_COMPILE", "no"),
            check_tasks=int(_env("CHECK_TASKS", "1" if toy else "4")),
        )
        unknown = [s for s in st.sizes if s not in SIZES]
        if unknown or not st.sizes:
            raise Fail(f"unknown size(s) {', '.join(unknown) or '(none)'}; known: "
                       f"{', '.join(SIZES)}", 2)
        if not st.tokenizer.is_file():
            raise Fail(f"tokenizer {st.tokenizer} not found (TOKENIZER=...)", 2)
        # Codex-S variants (function-level stage on a copy of the pretrained base): by default
        # the largest that fit the shipped-weights budget beside the base family and the
        # models the unpack keeps (see weights_plan).
        st.weights_budget = _weights_budget()
        vocab = _vocab_size(st.tokenizer)
        kept = kept_models(Path(_env("MODELS", str(REPO / "data/models"))), st.sizes)
        s_env = _env("S_SIZES", ",".join(st.sizes[-1:]) if toy else "")
        if s_env:
            st.s_sizes = [] if s_env == "none" else [x.strip() for x in s_env.split(",")
                                                       if x.strip()]
        else:
            st.s_sizes = s_sizes_within(st.sizes, vocab, sum(kept.values()), st.weights_budget)
        if bad := [x for x in st.s_sizes if x not in st.sizes]:
            raise Fail(f"S_SIZES {', '.join(bad)} not among SIZES", 2)
        st.weights_plan = weights_plan(st.sizes, st.s_sizes, vocab, kept, st.weights_budget)
        if st.optimizer not in ("muon", "adamw"):
            raise Fail(f"OPTIMIZER must be muon or adamw, not {st.optimizer!r}", 2)
        if not 0.0 <= st.func_share < 1.0:
            raise Fail(f"FUNC_SHARE must be in [0, 1), not {st.func_share}", 2)
        if st.call_files <= RESERVED_FILES or st.part_size > st.call_bytes - RESERVED_BYTES:
            raise Fail("CALL_FILES / CALL_BYTES leave no room for one part of PART_SIZE", 2)
        if st.sample_compile not in ("auto", "yes", "no"):
            raise Fail(f"SAMPLE_COMPILE must be auto, yes or no, not {st.sample_compile!r}", 2)
        if st.sample_s < 0 or st.sample_n < 1 or st.sample_n_low < 1 or st.check_tasks < 0:
            raise Fail("SAMPLE_S, CHECK_TASKS must be >= 0 and SAMPLE_N, SAMPLE_N_LOW >= 1", 2)
        return st

    @property
    def corpus(self) -> Path:
        """Corpus cache folder."""
        return self.work / "corpus"

    @property
    def models(self) -> Path:
        """Trained model folders."""
        return self.work / "models"

    @property
    def pack(self) -> Path:
        """Parts and gpu_train.json, kept for the fetch calls."""
        return self.work / "pack"

    @property
    def logs(self) -> Path:
        """Per-process logs."""
        return self.work / "logs"

    @property
    def cards_store(self) -> Path:
        """The run store of the card-protocol samples drawn here."""
        return self.work / "cards.sqlite"


class Log:
    """Timestamped log lines on stdout and in ``$OUT/gpu_train.log`` (written as they come)."""

    def __init__(self, path: Path | None, t0: float) -> None:
        self.path, self.t0, self.lock = path, t0, threading.Lock()

    def __call__(self, msg: str, file_only: bool = False) -> None:
        """Log ``msg`` (to the file alone with ``file_only``)."""
        line = f"[gpu_train {time.time() - self.t0:6.1f}s] {msg}"
        with self.lock:
            if not file_only:
                print(line, flush=True)
            if self.path is not None:
                with open(self.path, "a") as fh:
                    fh.write(line + "\n")


# -- packing ----------------------------------------------------------------------------------
def plan_calls(part_sizes: list[int], call_files: int = 8, call_bytes: int = 64 * MIB) -> list[int]:
    """Assign parts, in order, to device-tool calls; return each part's call number (1-based).

    Each call returns at most ``call_files`` files and ``call_bytes`` bytes, of which
    :data:`RESERVED_FILES` files and :data:`RESERVED_BYTES` bytes are kept for the log and
    ``gpu_train.json``. Parts keep their order, so a model's parts are in one call or in
    consecutive ones.

    Raises:
        ValueError: if one part alone does not fit a call.
    """
    max_parts, max_bytes = call_files - RESERVED_FILES, call_bytes - RESERVED_BYTES
    calls: list[int] = []
    call, n, used = 1, 0, 0
    for size in part_sizes:
        if size > max_bytes or max_parts < 1:
            raise ValueError(f"a part of {size} bytes does not fit a call of {max_bytes} bytes")
        if n + 1 > max_parts or used + size > max_bytes:
            call, n, used = call + 1, 0, 0
        calls.append(call)
        n, used = n + 1, used + size
    return calls


def pack_model(folder: Path, dest: Path, part_size: int,
               compress: bool = False) -> list[dict[str, Any]]:
    """Tar one model folder (no exact-resume state) and split it into parts of ``part_size``.

    ``compress``: gzip the tar (the samples' store: text compresses ~4x; weights do not, so
    model folders are stored as they are). Unpacking detects it.

    Returns:
        One dict per part: ``file``, ``model``, ``bytes``, ``sha256``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    tar_path = dest / f"{folder.name}.tar"
    with tarfile.open(tar_path, "w:gz" if compress else "w", format=tarfile.GNU_FORMAT,
                      **({"compresslevel": 6} if compress else {})) as tar:
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.name not in SKIP_FILES:
                tar.add(f, arcname=f"{folder.name}/{f.name}")
    parts = []
    with open(tar_path, "rb") as src:
        i = 0
        while chunk := src.read(part_size):
            name = f"{folder.name}.tar.part-{i:02d}"
            (dest / name).write_bytes(chunk)
            parts.append({"file": name, "model": folder.name, "bytes": len(chunk),
                          "sha256": hashlib.sha256(chunk).hexdigest()})
            i += 1
    tar_path.unlink()
    return parts


def _safe_members(tar: tarfile.TarFile, model: str) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        p = Path(m.name)
        if p.is_absolute() or ".." in p.parts or p.parts[0] != model or not m.isfile():
            raise Fail(f"unsafe or unexpected entry {m.name!r} in the parts of {model}")
    return members


# -- train mode -------------------------------------------------------------------------------
@dataclass
class Lane:
    """One size: its window and what its stages did."""

    name: str
    share: float
    start: float = 0.0
    end: float = 0.0
    rc: int | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the size has a trained model (its pretraining stage finished)."""
        return any(s["stage"] == "pretrain" and s.get("ok") for s in self.stages)


class Runner:
    """Start child processes, remember them for the deadline signals."""

    def __init__(self) -> None:
        self.procs: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, cmd: list[str], log_path: Path, env: dict[str, str] | None = None,
            timeout: float | None = None) -> int:
        """Run ``cmd`` with its output in ``log_path``; return its exit status.

        Past ``timeout`` seconds the process is killed and -9 returned; a process that does
        not die within 15 s of SIGKILL (stuck in a driver call) is left behind, so that the
        caller still meets the device tool's limit.
        """
        if self.stopping:
            return -1
        with open(log_path, "w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
                                    env={**os.environ, **(env or {})})
            with self.lock:
                self.procs.add(proc)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
                return -9
            finally:
                with self.lock:
                    self.procs.discard(proc)

    def signal_all(self, sig: int) -> int:
        """Send ``sig`` to every running child; return how many got it."""
        with self.lock:
            procs = list(self.procs)
        for p in procs:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        return len(procs)


def _tail(path: Path, n: int = 25) -> str:
    """Return the last ``n`` lines of a child's log, without those already in the main log."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join([ln for ln in lines if not ln.startswith("[gpu_train")][-n:])


def _corpus_meta(st: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in (("corpus", "summary.json"), ("functions", "functions.json")):
        p = st.corpus / name
        if p.exists():
            out[key] = json.loads(p.read_text())
    return out


def _fmt_stage(name: str, r: dict[str, Any]) -> str:
    mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "n/a"
    return (f"{name} {r['stage']}: {r['tokens']:,} tokens in {r['wall_time_s']:.0f} s "
            f"({r['tokens_per_s']:,.0f} tok/s, MFU {mfu}; first step {r['first_step_s']} s "
            f"incl. compile), held-out {r['heldout_loss']:.3f}, HumanEval-text "
            f"{r['humaneval_text_loss']:.3f}; {r['overhead_s']:.0f} s outside the loop")


def _lane_stage(st: Settings, log: Log, name: str, stage: str, stage_end: float,
                tokens: int | None, out_name: str | None = None) -> dict[str, Any]:
    """Train one stage of one size in this process (retrying once without torch.compile).

    ``out_name``: the model folder (default ``name``; the function stage trains the Codex-S
    copy ``codex-mini-s-<size>``).
    """
    import torch
    from transformers import LlamaForCausalLM  # noqa: F401 - its import is not the budget's

    from codexlab.models.configs import get_size
    from codexlab.models.training import TrainConfig, TrainingInterrupted, train

    compile_ = st.compile
    rec: dict[str, Any] = {"stage": stage, "ok": False}
    optimizer = st.optimizer
    if optimizer == "muon" and not _has_muon():
        log(f"{name} {stage}: this torch ({torch.__version__}) has no torch.optim.Muon with "
            "adjust_lr_fn; training with AdamW")
        optimizer = "adamw"
    for attempt in (1, 2):
        budget = None
        if st.stage1_tokens is None:  # time budgets (the function stage also has a token cap)
            budget = stage_end - time.time() - st.overhead
            if budget < st.min_stage_s:
                log(f"{name} {stage}: skipped, {budget:.0f} s left (< MIN_STAGE_S)")
                return {**rec, "skipped": True}
        functions = stage == "functions"
        folder = out_name or name
        cli = (f"codexlab train --size {name} --batch-size {st.batch} --seq-len {st.seq}"
               + (f" --time-budget {budget:.0f}" if budget is not None else "")
               + (f" --max-tokens {tokens}" if tokens else "")
               + (f" --stage functions --init {name} --out {folder}" if functions else "")
               + (" --final" if st.final else "") + " (scripts/gpu_train.sh)")
        cfg = TrainConfig(
            size=name, out_dir=st.models / folder, data_dir=st.corpus, seq_len=st.seq,
            batch_size=st.batch, time_budget_s=budget, max_tokens=tokens,
            resume=functions, device=st.device, compile=compile_, provisional=not st.final,
            progress=False, command=cli, split="functions" if functions else "train",
            # Codex-S: prompt tokens masked out of the loss (Codex paper §4.4).
            prompt_loss_weight=0.0 if functions else 1.0, optimizer=optimizer,
            humaneval_limit=4 if st.toy else None)
        log(f"{name} {stage}: start, budget "
            f"{f'{budget:.0f} s' if budget is not None else '-'}"
            f"{f', at most {tokens:,} tokens' if tokens else ''}, compile {compile_}")
        started = time.time()
        rec.update({"attempt": attempt, "budget_s": budget, "max_tokens": tokens,
                    "compile": compile_, "optimizer": optimizer, "lr": get_size(name).lr})
        try:
            card = train(cfg)
        except TrainingInterrupted as exc:
            log(f"{name} {stage}: stopped at the deadline: {exc}")
            return {**rec, "interrupted": True, "process_s": round(time.time() - started, 1)}
        except Exception as exc:  # noqa: BLE001 - logged; one retry without compile
            import traceback

            traceback.print_exc()
            rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
            log(f"{name} {stage}: failed after {time.time() - started:.0f} s: {rec['error']}")
            if compile_ == "no":
                return rec
            compile_ = "no"
            torch._dynamo.reset()
            log(f"{name} {stage}: retrying without torch.compile")
            continue
        took = time.time() - started
        last = card["training"]["stages"][-1]
        rec.update({k: last.get(k) for k in (
            "tokens", "steps", "wall_time_s", "tokens_per_s", "mfu", "first_step_s",
            "tokens_per_s_after_first_step", "mfu_after_first_step", "flops_per_token",
            "hardware", "compiled")})
        rec.update({"ok": True, "process_s": round(took, 1),
                    "overhead_s": round(took - (last.get("wall_time_s") or 0.0), 1),
                    "heldout_loss": card["eval"]["heldout_loss"],
                    "humaneval_text_loss": card["eval"]["humaneval_text_loss"]})
        log(_fmt_stage(name, rec))
        return rec
    return rec


def _has_muon() -> bool:
    """Whether this torch has ``torch.optim.Muon`` with the ``adjust_lr_fn`` training uses."""
    import inspect

    import torch

    muon = getattr(torch.optim, "Muon", None)
    return muon is not None and "adjust_lr_fn" in inspect.signature(muon).parameters


def lane_mode(st: Settings, name: str, start: float, end: float) -> int:
    """One size in one process: pretraining until its share of the window, then functions.

    One process runs both stages so that the second pays no new interpreter start-up and
    finds torch.compile's caches warm. Writes ``<name>.lane.json`` beside its log.
    """
    log = Log(Path(os.environ["GPU_TRAIN_LOG"]) if os.environ.get("GPU_TRAIN_LOG") else None,
              st.t0)
    if st.threads:
        import torch

        torch.set_num_threads(int(st.threads))
    result = st.logs / f"{name}.lane.json"
    with_s = name in st.s_sizes and (st.func_share > 0 or bool(st.stage2_tokens))
    func_s = (max(st.func_share * (end - start), st.func_min_s)
              if with_s and st.func_share > 0 else 0.0)
    stage1_end = end - func_s
    stages = [_lane_stage(st, log, name, "pretrain", stage1_end, st.stage1_tokens)]
    result.write_text(json.dumps(stages, indent=2) + "\n")  # kept if a deadline kill follows
    if stages[0]["ok"] and with_s:
        # The base stays pretrained only (Codex); the function stage trains a copy (Codex-S).
        from codexlab.models.registry import variant_name

        s_name = variant_name(name, "s")
        shutil.rmtree(st.models / s_name, ignore_errors=True)
        shutil.copytree(st.models / name, st.models / s_name,
                        ignore=shutil.ignore_patterns(*SKIP_FILES))
        f = _corpus_meta(st).get("functions", {})
        tokens = st.stage2_tokens or (int(st.func_epochs * f["tokens"]) if f.get("tokens")
                                      else None)
        stages.append({**_lane_stage(st, log, name, "functions", end, tokens, s_name),
                       "model": s_name})
        result.write_text(json.dumps(stages, indent=2) + "\n")
    return 0 if all(s["ok"] for s in stages) else 1


def train_mode(st: Settings) -> int:
    """Corpus, training, packing; copy the first call's files to ``$OUT``."""
    from codexlab.models.card import update_model_card
    from codexlab.models.configs import SIZES
    from codexlab.models.training import peak_flops_of

    for d in (st.out, st.logs, st.models):
        d.mkdir(parents=True, exist_ok=True)
    if st.pack.exists():
        shutil.rmtree(st.pack)  # parts of an earlier run must never be fetched with this one
    # A rerun on a warm machine must not pack or report an earlier run's results.
    for old in [*st.logs.glob("*.lane.json"), st.logs / "sample.json",
                *(Path(str(st.cards_store) + x) for x in ("", "-wal", "-shm"))]:
        old.unlink(missing_ok=True)
    log = Log(st.out / LOG, st.t0)
    # The card sampling's window comes off the training's (it follows training and packing).
    deadline = st.t0 + st.total - st.margin - st.sample_s
    meta: dict[str, Any] = {"script": "scripts/gpu_train.sh", "started_utc": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.t0)), "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(st).items()},
        "timings_s": {}}
    gpu = ""
    if shutil.which("nvidia-smi"):
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             check=False).stdout.strip()
    meta["gpu"] = gpu
    log(f"start: sizes {', '.join(st.sizes)}; total {st.total:.0f} s, margin {st.margin:.0f} s; "
        f"{'concurrent' if st.concurrent else 'sequential'}; batch {st.batch} x {st.seq}; "
        f"GPU {gpu or 'none'}; {os.cpu_count()} CPUs; work {st.work}")
    log(st.weights_plan)

    # 1. Corpus v2 + function set, with the shipped tokenizer (no BPE training).
    t = time.time()
    args = [sys.executable, "-m", "codexlab", "train", "--prepare-only", "--stage", "functions",
            "--data-dir", str(st.corpus), "--tokenizer", str(st.tokenizer), "--no-progress"]
    for r in st.roots:
        args += ["--roots", r]
    if st.max_files and st.max_files != "none":
        args += ["--max-files", st.max_files]
    runner = Runner()
    prep_log = st.logs / "prepare.log"
    # Past this share of the total the run cannot train anything worth its time.
    prep_max = float(_env("PREPARE_MAX", str(0.5 * st.total)))
    rc = runner.run(args, prep_log, timeout=prep_max)
    meta["timings_s"]["prepare"] = round(time.time() - t, 1)
    if rc != 0:
        why = f"took over PREPARE_MAX={prep_max:.0f} s" if rc == -9 else f"rc {rc}"
        log(f"corpus build failed ({why}); last lines:\n{_tail(prep_log)}")
        raise Fail(f"corpus build failed ({why}); see {LOG}", 3)
    meta.update(_corpus_meta(st))
    c, f = meta.get("corpus", {}), meta.get("functions", {})
    log(f"corpus: {c.get('train', {}).get('files')} train files, "
        f"{c.get('train', {}).get('tokens') or 0:,} tokens; held-out "
        f"{c.get('heldout', {}).get('tokens') or 0:,} tokens; functions "
        f"{f.get('kept_functions')} ({f.get('tokens') or 0:,} tokens); "
        f"took {meta['timings_s']['prepare']:.0f} s (corpus {c.get('seconds', {})})")

    # 2. Training: one process per size, windows in proportion to gpu_share.
    t_train = time.time()
    window = deadline - t_train
    if st.stage1_tokens is None and window < 2 * st.min_stage_s + 2 * st.overhead:
        raise Fail(f"only {window:.0f} s left for training after the corpus build", 4)
    lanes = [Lane(n, SIZES[n].gpu_share) for n in st.sizes]
    env: dict[str, str] = {"PYTHONUNBUFFERED": "1", "GPU_TRAIN_LOG": str(st.out / LOG),
                           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
                           "TOKENIZERS_PARALLELISM": "false"}
    if st.concurrent and "TORCHINDUCTOR_COMPILE_THREADS" not in os.environ:
        # Several processes compile at once: split the cores instead of N x cpu_count workers.
        env["TORCHINDUCTOR_COMPILE_THREADS"] = str(max(1, (os.cpu_count() or 1) // len(lanes)))
    log(f"training window {window:.0f} s (deadline at {deadline - st.t0:.0f} s)")

    def run_lane(ln: Lane) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "lane", ln.name,
               f"{ln.start:.3f}", f"{ln.end:.3f}"]
        ln.rc = runner.run(cmd, st.logs / f"{ln.name}.log", env)
        res = st.logs / f"{ln.name}.lane.json"
        ln.stages = json.loads(res.read_text()) if res.exists() else []
        if ln.rc != 0:
            log(f"{ln.name}: process ended with rc {ln.rc}; last lines of {ln.name}.log:\n"
                f"{_tail(st.logs / f'{ln.name}.log', 12)}")

    threads = []
    if st.concurrent:
        biggest = max(ln.share for ln in lanes)
        for ln in lanes:
            # A floor, so that a small size's compile does not eat its whole window.
            ln.start = t_train
            ln.end = t_train + min(window, max(window * ln.share / biggest, st.lane_min_s))
            log(f"{ln.name}: window {ln.end - ln.start:.0f} s (until {ln.end - st.t0:.0f} s)")
            threads.append(threading.Thread(target=run_lane, args=(ln,), daemon=True))
    else:
        def sequential() -> None:
            for i, ln in enumerate(lanes):
                now = time.time()
                rest = sum(x.share for x in lanes[i:])
                ln.start, ln.end = now, now + (deadline - now) * ln.share / rest
                log(f"{ln.name}: window {ln.end - ln.start:.0f} s (until {ln.end - st.t0:.0f} s)")
                run_lane(ln)

        threads.append(threading.Thread(target=sequential, daemon=True))
    for th in threads:
        th.start()
    kill_at = deadline + st.margin / 2
    termed = killed = False
    while any(th.is_alive() for th in threads):
        for th in threads:
            th.join(timeout=0.5)
        now = time.time()
        if st.stage1_tokens is None and now >= kill_at and not termed:
            runner.stopping, termed = True, True
            log(f"deadline: SIGTERM to {runner.signal_all(signal.SIGTERM)} trainer(s)")
        if termed and not killed and now >= kill_at + 10:
            killed = True
            log(f"deadline: SIGKILL to {runner.signal_all(signal.SIGKILL)} trainer(s)")
    meta["timings_s"]["train"] = round(time.time() - t_train, 1)

    # The GPU's aggregate use over the training phase: every stage's FLOPs / time / peak.
    flops = sum((s.get("tokens") or 0) * (s.get("flops_per_token") or 0)
                for ln in lanes for s in ln.stages)
    peak = peak_flops_of(gpu)
    agg = round(flops / meta["timings_s"]["train"] / peak, 4) if peak and flops else None
    meta["aggregate_mfu"] = agg
    run_info = {"script": "scripts/gpu_train.sh", "concurrent": st.concurrent,
                "sizes": len(lanes), "train_window_s": round(window, 1), "aggregate_mfu": agg}
    for ln in lanes:
        for folder in _lane_models(st, ln):
            update_model_card(st.models / folder, training={"gpu_run": run_info})
    meta["sizes"] = {ln.name: {"share": ln.share, "window_s": round(ln.end - ln.start, 1),
                               "trained": ln.ok, "rc": ln.rc, "stages": ln.stages}
                     for ln in lanes}

    # 3. Pack and plan the calls, most important model first: call 1 comes back with this
    # command; a fetch call that the session's device time cannot pay for loses only the
    # smallest sizes, which a CPU can retrain.
    t = time.time()
    parts: list[dict[str, Any]] = []
    for folder in _priority(st, lanes):
        parts += pack_model(st.models / folder, st.pack, st.part_size)
    _plan(st, parts)
    meta["timings_s"]["pack"] = round(time.time() - t, 1)
    meta["parts"], meta["calls"] = parts, max((p["call"] for p in parts), default=0)
    meta["unpack"] = ("here: scripts/gpu_train.sh --unpack DIR_OF_CALL_1 DIR_OF_CALL_2 ... "
                      "(or: cat NAME.tar.part-* | tar -xf - -C data/models; then "
                      "codexlab train --scaling-only)")
    missing = [ln.name for ln in lanes if not ln.ok]
    partial = [ln.name for ln in lanes if ln.ok and ln.name in st.s_sizes and not any(
        s["stage"] == "functions" and s.get("ok") for s in ln.stages)]
    meta["timings_s"]["total"] = round(time.time() - st.t0, 1)
    meta["missing"], meta["without_function_stage"] = missing, partial
    st.pack.mkdir(parents=True, exist_ok=True)
    (st.pack / META).write_text(json.dumps(meta, indent=2) + "\n")
    if parts:
        _copy_call(st, 1, log)  # before the sampling: whatever happens to it, call 1 is out
    else:
        shutil.copyfile(st.pack / META, st.out / META)

    # 4. The card protocol's samples of the trained models, drawn here on the GPU. Nothing
    # that goes wrong in it may cost the models or the summary below.
    if st.sample_s > 0 and parts:
        models = [m for m in _priority(st, lanes)
                  if not st.sample_models or m in st.sample_models]
        try:
            _sample_phase(st, log, meta, models, env)
        except Exception as exc:  # noqa: BLE001 - logged and recorded; the run goes on
            import traceback

            log(f"card sampling failed: {type(exc).__name__}: {exc}\n"
                f"{traceback.format_exc(limit=5)}")
            meta.setdefault("cards", {})["error"] = f"{type(exc).__name__}: {exc}"[:500]
    n_calls = meta["calls"]

    # 5. The per-process logs go into the returned log; the summary comes last.
    for p in sorted(st.logs.glob("*.log")):
        log(f"--- {p.name} (last lines) ---\n{_tail(p, 40)}", file_only=True)
    for ln in lanes:
        for s in ln.stages:
            if s.get("ok"):
                log("result " + _fmt_stage(ln.name, s))
    meta["timings_s"]["total"] = round(time.time() - st.t0, 1)
    (st.pack / META).write_text(json.dumps(meta, indent=2) + "\n")
    shutil.copyfile(st.pack / META, st.out / META)
    log(f"done in {meta['timings_s']['total']:.0f} s (prepare {meta['timings_s']['prepare']:.0f}"
        f", train {meta['timings_s']['train']:.0f}, pack {meta['timings_s']['pack']:.0f}, "
        f"sample {meta['timings_s'].get('sample', 0):.0f}); aggregate MFU {agg}; "
        f"{len(meta['parts'])} parts in {n_calls} call(s)")
    if n_calls > 1:
        log(f"NEXT, at once (the machine goes back ~30 s after a call): PART=2 "
            f"scripts/gpu_train.sh --fetch{' (then PART=3 ...)' if n_calls > 2 else ''}")
    log("then here: scripts/gpu_train.sh --unpack <files_at of each call>  "
        "(verifies, unpacks into data/models, runs codexlab train --scaling-only"
        + (", writes the card samples' store" if meta.get("cards", {}).get("sets") else "")
        + ")")
    shutil.copyfile(st.out / LOG, st.pack / LOG)
    if missing:
        raise Fail(f"no model for {', '.join(missing)} (see {LOG})", 1)
    if partial:
        raise Fail(f"no function-level stage for {', '.join(partial)} (see {LOG})", 1)
    return 0


def _priority(st: Settings, lanes: list[Lane]) -> list[str]:
    """Return the trained model folders, most important first.

    Largest size first, each base before its Codex-S copy: the family's acceptance is measured
    on the largest size.
    """
    from codexlab.models.configs import SIZES

    order = sorted(lanes, key=lambda ln: list(SIZES).index(ln.name), reverse=True)
    return [folder for ln in order for folder in _lane_models(st, ln)]


def _plan(st: Settings, parts: list[dict[str, Any]]) -> None:
    """Set every part's ``call`` (in order; see :func:`plan_calls`)."""
    for p, call in zip(parts, plan_calls([p["bytes"] for p in parts], st.call_files,
                                         st.call_bytes), strict=True):
        p["call"] = call


def _lane_models(st: Settings, ln: Any) -> list[str]:
    """Return the model folders a lane produced: its base, and its Codex-S copy if trained."""
    if not ln.ok:
        return []
    out = [ln.name]
    out += [s["model"] for s in ln.stages
            if s.get("stage") == "functions" and s.get("ok") and s.get("model")]
    return out


# -- card sampling (GPU) -----------------------------------------------------------------------
def _sample_phase(st: Settings, log: Log, meta: dict[str, Any], models: list[str],
                  env: dict[str, str]) -> None:
    """Draw the card protocol's samples of ``models`` until the window ends; pack the store.

    The window runs from now (training and packing done) to ``TOTAL`` - 15 s: the ``SAMPLE_S``
    taken from training, plus whatever training and packing left of the margin. The sampling
    runs in a child process killed at the window's end (the store commits every few seconds,
    so a kill loses seconds of samples, not a set; a partial set is completed here). Its parts
    go right after call 1's, before the other models': they are small and measure the most
    important models. Updates ``meta`` (``cards``, ``parts``, ``calls``) and re-copies call 1.
    """
    timed = st.stage1_tokens is None
    end = (st.t0 + st.total - SAMPLE_PACK_S) if timed else time.time() + st.sample_s
    left = end - time.time()
    if left < 20:
        log(f"card sampling: skipped, {left:.0f} s left")
        meta["cards"] = {"skipped": f"{left:.0f} s left"}
        return
    log(f"card sampling: {', '.join(models)} (n={st.sample_n} at T=0.8, n={st.sample_n_low} at "
        f"T=0.2{', tasks ' + st.sample_tasks if st.sample_tasks else ''}), {left:.0f} s")
    if not models:
        log("card sampling: no model (SAMPLE_MODELS matches none)")
        return
    t = time.time()
    cmd = [sys.executable, str(Path(__file__).resolve()), "sample", f"{end:.3f}", *models]
    # A runner of its own: the training's runner refuses new children once the deadline
    # signals went out.
    rc = Runner().run(cmd, st.logs / "sample.log", env, timeout=left)
    meta["timings_s"]["sample"] = round(time.time() - t, 1)
    res_path = st.logs / "sample.json"
    cards: dict[str, Any] = json.loads(res_path.read_text()) if res_path.exists() else {}
    cards["rc"] = rc
    if rc not in (0, -9):
        log(f"card sampling: rc {rc}; last lines of sample.log:\n{_tail(st.logs / 'sample.log')}")
    if not st.cards_store.exists():
        meta["cards"] = cards
        return
    # A consistent copy even after a kill (sqlite's backup API reads through the WAL).
    import sqlite3

    folder = st.work / CARDS
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    src, dst = sqlite3.connect(st.cards_store), sqlite3.connect(folder / "cards.sqlite")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    from codexlab.store import Store

    with Store(folder / "cards.sqlite") as store:
        cards["stored"] = [{"model": Path(x["model"]).name, "temperature": x["temperature"],
                            "samples": x["n_samples"], "set_id": x["set_id"]}
                           for x in store.sample_sets()]
    meta["cards"] = cards
    for x in cards["stored"]:
        log(f"card sampling: {x['model']} T={x['temperature']:g}: {x['samples']:,} samples")
    new = [{**p, "kind": "store"} for p in pack_model(folder, st.pack, st.part_size,
                                                       compress=True)]
    first = [p for p in meta["parts"] if p["call"] == 1]
    rest = [p for p in meta["parts"] if p["call"] != 1]
    parts = first + new + rest
    _plan(st, parts)
    meta["parts"], meta["calls"] = parts, max(p["call"] for p in parts)
    (st.pack / META).write_text(json.dumps(meta, indent=2) + "\n")
    _copy_call(st, 1, log)


def _device_check(name: str, problems: dict[str, Any], cfg: Any, device: str,
                  compile_: bool | None, k: int) -> dict[str, Any]:
    """Greedy samples of ``k`` tasks on ``device`` (bf16 on CUDA) and on the CPU (fp32).

    What the model-family issue asks before GPU samples are trusted: the same stops (finish
    reasons) and log-probs within bf16's tolerance. Reports, never raises for a difference.
    """
    import dataclasses

    from codexlab.pipeline import sampling_config
    from codexlab.sampling import load_model
    from codexlab.sampling.engine import sample_problems

    ids = sorted(problems)
    pick = {i: problems[i] for i in ids[:: max(1, len(ids) // max(k, 1))][:k]}
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for dev in (device, "cpu"):
        model, tok = load_model(name, device=dev)
        # The protocol's stops and length, greedy: one sample per task.
        scfg = dataclasses.replace(
            sampling_config(cfg, 1.0, device=dev, compile=compile_ if dev != "cpu" else None),
            temperature=0.0, n=1)
        rows[dev] = {r["task_id"]: r for r in sample_problems(model, tok, pick, scfg,
                                                              progress=False)}
        del model
    a, b = rows[device], rows["cpu"]
    same = [t for t in pick if a[t]["completion"] == b[t]["completion"]]
    deltas = [abs(a[t]["sum_logprob"] - b[t]["sum_logprob"]) / max(1, b[t]["n_tokens"])
              for t in same]
    return {"model": name, "device": device, "reference": "cpu (float32)",
            "tasks": list(pick), "same_completion": len(same),
            "same_finish_reason": sum(a[t]["finish_reason"] == b[t]["finish_reason"]
                                      for t in pick),
            "max_abs_delta_logprob_per_token": max(deltas) if deltas else None,
            "rows": {t: {"finish": [a[t]["finish_reason"], b[t]["finish_reason"]],
                         "n_tokens": [a[t]["n_tokens"], b[t]["n_tokens"]],
                         "sum_logprob": [a[t]["sum_logprob"], b[t]["sum_logprob"]]}
                     for t in pick}}


def sample_mode(st: Settings, end: float, models: list[str]) -> int:
    """Sample the card protocol's sets of ``models`` (folders under ``$WORK/models``) until END.

    Order: the device check, then per model T=0.8 (n=SAMPLE_N) and T=0.2 (n=SAMPLE_N_LOW).
    The models are sampled under their built-in short names (``CODEXLAB_MODELS_DIR`` points
    the registry at ``$WORK/models``), so every set has exactly the key that
    ``record_humaneval_in_cards.py --measure`` computes here once the family is unpacked into
    ``data/models`` (same protocol through :func:`codexlab.pipeline.sampling_config`, same
    name, weights fingerprint and token healing): complete sets are only executed there, and
    a set the deadline cut short is completed, not drawn again. Writes ``sample.json``
    beside the logs after every set.
    """
    # Before anything resolves a model name.
    os.environ["CODEXLAB_MODELS_DIR"] = str(st.models)
    import torch

    from codexlab.config import card_configs
    from codexlab.pipeline import load_problems, sampling_config
    from codexlab.sampling import load_model, sample_to_store
    from codexlab.store import Store

    if st.threads:
        torch.set_num_threads(int(st.threads))
    low, high = card_configs(st.sample_n, st.sample_n_low, sample_workers=1,
                             store=str(st.cards_store), tasks=st.sample_tasks)
    problems, pinfo = load_problems(high)
    cuda = torch.cuda.is_available() and st.device in ("auto", "cuda")
    device = "cuda" if cuda else "cpu"
    compile_ = {"auto": None, "yes": True, "no": False}[st.sample_compile]
    res: dict[str, Any] = {"device": device, "compile": st.sample_compile,
                           "tasks": len(problems), "check": None, "sets": []}
    out = st.logs / "sample.json"

    def save() -> None:
        out.write_text(json.dumps(res, indent=2) + "\n")

    if st.check_tasks and models:
        t = time.time()
        try:
            res["check"] = _device_check(models[0], problems, high, device, compile_,
                                         st.check_tasks)
        except Exception as exc:  # noqa: BLE001 - reported; the samples are still drawn
            res["check"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        res["check"]["seconds"] = round(time.time() - t, 1)
        print(f"device check: {json.dumps(res['check'])[:400]}", flush=True)
        save()
    with Store(st.cards_store) as store:
        for name in models:
            if time.time() >= end:
                break
            model, tok = load_model(name, device=device)
            for cfg in (high, low):
                temp = cfg.scaling_temperatures[0]
                rec: dict[str, Any] = {"model": name, "temperature": temp, "n": cfg.n}
                t = time.time()
                try:
                    sid = sample_to_store(
                        name, problems, sampling_config(cfg, temp, device=device,
                                                        compile=compile_),
                        store, progress=False, problems_sha256=pinfo["problems_sha256"],
                        model_and_tokenizer=(model, tok))
                except Exception as exc:  # noqa: BLE001 - reported; the next set is tried
                    import traceback

                    traceback.print_exc()
                    rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
                else:
                    rows = store.samples(sid, problems)
                    tokens = sum(r["n_tokens"] or 0 for r in rows)
                    took = time.time() - t
                    rec.update(set_id=sid, samples=len(rows), tokens=tokens,
                               seconds=round(took, 1), tokens_per_s=round(tokens / took, 1))
                print(f"set: {json.dumps(rec)}", flush=True)
                res["sets"].append(rec)
                save()
            del model
    return 0


def _copy_call(st: Settings, call: int, log: Log | None = None) -> list[Path]:
    meta = json.loads((st.pack / META).read_text())
    files = [p["file"] for p in meta["parts"] if p["call"] == call]
    st.out.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in [*files, META]:
        shutil.copyfile(st.pack / name, st.out / name)
        copied.append(st.out / name)
    total = sum(p.stat().st_size for p in copied)
    msg = (f"call {call} of {meta['calls']}: {len(files)} part(s), {total / MIB:.1f} MiB in "
           f"{st.out}")
    (log or print)(msg)
    return copied


def fetch_mode(st: Settings) -> int:
    """Copy the parts of call ``$PART`` (default 2) to ``$OUT``."""
    if not (st.pack / META).exists():
        raise Fail(f"nothing to fetch: {st.pack / META} is missing (the machine was given back "
                   "or the training command did not finish)", 5)
    call = int(_env("PART", "2"))
    n = json.loads((st.pack / META).read_text())["calls"]
    if not 1 <= call <= n:
        raise Fail(f"PART={call}: the run has calls 1..{n}", 2)
    _copy_call(st, call)
    if call < n:
        print(f"gpu_train: next: PART={call + 1} scripts/gpu_train.sh --fetch")
    return 0


# -- unpack mode (here) -----------------------------------------------------------------------
def _retire_older_family(dest: Path, fresh: list[str]) -> None:
    """Remove the models of an older family version from ``dest`` (they stay in git history).

    The shipped weights must fit the repository's budget (120 MB), and a v1 model beside v2
    ones would mix tokenizers in the scaling figure. A Codex-S model left from an earlier run
    whose base is among ``fresh`` goes too (it was fine-tuned from other weights); a Codex-D
    model stays, with a line that says how to refresh it.
    """
    versions = []
    for name in fresh:
        card = dest / name / "model_card.json"
        if card.exists():
            versions.append(int(json.loads(card.read_text()).get("family_version") or 1))
    newest = max(versions, default=1)
    for folder in sorted(dest.glob("codex-mini-*")):
        card = folder / "model_card.json"
        if folder.name in fresh or not card.exists():
            continue
        meta = json.loads(card.read_text())
        fate = _fate(meta, fresh, newest)
        if fate == "old_family":
            shutil.rmtree(folder)
            print(f"gpu_train: removed {folder.name} (family v{meta.get('family_version') or 1}; "
                  "still in git history)")
        elif fate == "rebased_s":
            # A fine-tune from an earlier (CPU) run whose base was just replaced was not
            # trained from these weights, and Figs 9/10 pair each Codex-S model with its base
            # by name: drop it.
            shutil.rmtree(folder)
            print(f"gpu_train: removed {folder.name} (its base {meta['base_model']} was "
                  "retrained; still in git history)")
        elif fate == "rebased":
            # Codex-D stands alone (it writes docstrings for any model's samples): keep it.
            print(f"gpu_train: kept {folder.name}, fine-tuned from an earlier "
                  f"{meta['base_model']}; to refresh it: codexlab train --size "
                  f"{meta['base_model']} --stage docstrings --init {meta['base_model']} "
                  f"--overwrite --out {folder}")


def unpack_mode(dirs: list[str]) -> int:
    """Verify and unpack the parts found in ``dirs`` into ``$MODELS``; refresh the scaling fit."""
    if not dirs:
        raise Fail("--unpack needs the folders the calls returned", 2)
    folders = [Path(d) for d in dirs]
    for d in folders:
        if not d.is_dir():
            raise Fail(f"not a folder: {d}", 2)
    metas = [json.loads((d / META).read_text()) for d in folders if (d / META).exists()]
    if not metas:
        raise Fail(f"no {META} in {', '.join(dirs)}", 2)
    # Call 1's copy is written before the card sampling adds its parts: take the fullest.
    meta = max(metas, key=lambda m: (len(m.get("parts", [])),
                                     m.get("timings_s", {}).get("total", 0)))
    default_dest = not os.environ.get("MODELS")
    dest = Path(_env("MODELS", str(REPO / "data/models")))
    dest.mkdir(parents=True, exist_ok=True)
    found = {p.name: p for d in folders for p in d.iterdir() if ".tar.part-" in p.name}
    models: dict[str, list[dict[str, Any]]] = {}
    for p in meta["parts"]:
        models.setdefault(p["model"], []).append(p)
        # Every part found is checked, also those of a model still incomplete: a bad copy
        # shows now, not after the next fetch.
        if p["file"] in found and hashlib.sha256(
                found[p["file"]].read_bytes()).hexdigest() != p["sha256"]:
            raise Fail(f"checksum mismatch: {found[p['file']]}", 6)
    done, incomplete = [], []
    cards_store = None
    for model, parts in models.items():
        if any(p["file"] not in found for p in parts):
            incomplete.append(model)
            continue
        blobs = [found[p["file"]].read_bytes() for p in parts]
        tmp = dest / f".unpack-{model}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with tarfile.open(fileobj=io.BytesIO(b"".join(blobs))) as tar:
            tar.extractall(tmp, members=_safe_members(tar, model), filter="data")
        if model == CARDS:
            cards_store = _place_cards_store(tmp / model / "cards.sqlite")
            shutil.rmtree(tmp)
            continue
        target = dest / model
        if target.exists():
            shutil.rmtree(target)
        (tmp / model).rename(target)
        tmp.rmdir()
        done.append(model)
        print(f"gpu_train: unpacked {model} -> {target}")
    if done and not [m for m in incomplete if m != CARDS]:
        _retire_older_family(dest, done)
        budget = _weights_budget()
        total = sum(f.stat().st_size for f in dest.glob("codex-mini-*/*.safetensors"))
        print(f"gpu_train: shipped weights in {dest}: {total / 1e6:.1f} MB of the "
              f"{budget / 1e6:.0f} MB budget")
        if total > budget:
            print("gpu_train: WARNING: over the weights budget (issue 10): remove a Codex-S "
                  "copy before committing (tests/test_models_train.py::"
                  "test_shipped_weights_fit_the_repository_budget checks 120 MB)")
    if default_dest and _env("SCALING", "1") == "1" and done:
        if meta.get("corpus"):
            (REPO / "data/codex_mini_corpus.json").write_text(
                json.dumps(meta["corpus"], indent=2) + "\n")
        subprocess.run([sys.executable, "-m", "codexlab", "train", "--scaling-only"],
                       cwd=REPO, check=True)
    check = meta.get("cards", {}).get("check") or {}
    if check.get("tasks"):
        n = len(check["tasks"])
        print(f"gpu_train: device check ({check['device']} vs {check['reference']}, greedy, "
              f"{n} tasks): same completion {check['same_completion']}/{n}, same finish "
              f"reason {check['same_finish_reason']}/{n}, max |delta log-prob| per token "
              f"{check['max_abs_delta_logprob_per_token']}")
        if check["same_finish_reason"] < n:
            print("gpu_train: WARNING: the GPU path stopped differently from the CPU path; "
                  "look at gpu_train.json cards.check before trusting the GPU samples")
    elif check.get("error"):
        print(f"gpu_train: WARNING: the device check failed: {check['error']}")
    if cards_store is not None:
        sets = meta.get("cards", {}).get("stored", [])
        print(f"gpu_train: the card samples ({sum(x['samples'] for x in sets):,} in {len(sets)} "
              f"sets, drawn on the GPU) -> {cards_store}; execute them here and write the "
              "cards:\n  CODEXLAB_ALLOW_CODE_EXEC=1 python scripts/record_humaneval_in_cards.py "
              f"--measure --store {cards_store}   (then again with --variant s)\n"
              "  (sets the GPU did not finish are sampled here; see gpu_train.json 'cards')")
    if incomplete:
        raise Fail(f"parts missing for {', '.join(incomplete)}: fetch the other calls "
                   f"(the run had {meta['calls']})", 1)
    return 0


def _place_cards_store(src: Path) -> Path:
    """Move the unpacked card-samples store to its place here; return the path.

    The place is ``$CARDS_STORE``, default ``<results>/gpu-cards.sqlite``; an existing store
    there is kept as ``.old``.
    """
    from codexlab.paths import results_dir

    target = Path(_env("CARDS_STORE", str(results_dir() / "gpu-cards.sqlite")))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        # Its verdicts were executed here; a second unpack must not silently drop them (nor
        # those still in its write-ahead log: the -wal and -shm files move along).
        for extra in ("", "-wal", "-shm"):
            old = Path(str(target) + extra)
            if old.exists():
                old.replace(Path(str(target) + ".old" + extra))
        print(f"gpu_train: kept the earlier {target.name} as {target.name}.old")
    shutil.move(str(src), target)
    return target


def main(argv: list[str]) -> int:
    """Dispatch on the mode; print a one-line reason and return non-zero on failure."""
    mode = argv[0] if argv else "train"
    try:
        if mode == "unpack":
            return unpack_mode(argv[1:])
        st = Settings.from_env()
        if mode == "fetch":
            return fetch_mode(st)
        if mode == "train":
            return train_mode(st)
        if mode == "lane":
            return lane_mode(st, argv[1], float(argv[2]), float(argv[3]))
        if mode == "sample":
            return sample_mode(st, float(argv[1]), argv[2:])
        raise Fail(f"unknown mode {mode!r}", 2)
    except Fail as exc:
        print(f"gpu_train: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
