"""Re-measure the HumanEval-text and solution losses of shipped models into their cards.

``humaneval_solution_loss`` (loss of the canonical solution's tokens given the prompt; see
:func:`codexlab.models.training.humaneval_text_loss`) was added to the cards after the v1
family and its first fine-tunes were trained; this fills it in without retraining, on the
CPU, in seconds per model. Usage: ``python scripts/card_losses.py [NAME ...]`` (default: every
shipped model, all variants).
"""

from __future__ import annotations

import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codexlab.models import builtin_models, update_model_card
from codexlab.models.training import humaneval_text_loss


def main(names: list[str]) -> None:
    """Measure and record the losses of ``names`` (default: every shipped model)."""
    torch.set_num_threads(1)
    shipped = builtin_models(variant="*")
    for name in names or list(shipped):
        path = shipped[name]
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(path)
        he = humaneval_text_loss(model, tok, torch.device("cpu"), torch.bfloat16)
        update_model_card(path, eval={"humaneval_text_loss": round(he["loss"], 4),
                                      "humaneval_solution_loss": round(he["solution_loss"], 4),
                                      "humaneval_solution_tokens": he["solution_tokens"]})
        print(f"{name}: HumanEval-text {he['loss']:.4f}  solution {he['solution_loss']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
