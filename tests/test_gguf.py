"""GGUF export: which tokenizers llama.cpp can split prompts for, and what the file records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from shipped import SMALLEST

from codexlab.models.gguf import GGUFExportError, export_gguf, pretokenizer_kind
from codexlab.models.registry import builtin_models

TOKENIZERS = Path(__file__).resolve().parents[1] / "data" / "tokenizer"


def _folder(tmp_path: Path, name: str, tok: dict) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "tokenizer.json").write_text(json.dumps(tok))
    return d


def test_pretokenizer_kinds(tmp_path: Path) -> None:
    v1 = json.loads((TOKENIZERS / "codex-mini-v1.json").read_text())
    v2 = json.loads((TOKENIZERS / "codex-mini-v2.json").read_text())
    assert pretokenizer_kind(_folder(tmp_path, "v1", v1)) == "gpt2"
    assert pretokenizer_kind(_folder(tmp_path, "v2", v2)) == "newline-split"
    # Anything else would be split differently by llama.cpp than by the HF tokenizer.
    other_split = json.loads(json.dumps(v2))
    other_split["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+"
    assert pretokenizer_kind(_folder(tmp_path, "split", other_split)) == "other"
    prefix = json.loads(json.dumps(v1))
    prefix["pre_tokenizer"]["add_prefix_space"] = True
    assert pretokenizer_kind(_folder(tmp_path, "prefix", prefix)) == "other"
    normalized = dict(v1, normalizer={"type": "NFC"})
    assert pretokenizer_kind(_folder(tmp_path, "nfc", normalized)) == "other"


def test_export_records_who_splits_prompts(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    if SMALLEST not in builtin_models():
        pytest.skip("no built-in model is shipped in data/models")
    src = builtin_models()[SMALLEST]
    kind = pretokenizer_kind(src)
    assert kind in ("gpt2", "newline-split")
    if kind == "newline-split":
        # Without the caller's promise to tokenize prompts itself, a v2 tokenizer is refused.
        with pytest.raises(GGUFExportError, match="hf_tokenizer=True"):
            export_gguf(src, tmp_path / "refused.gguf")
    out = export_gguf(src, tmp_path / "m.gguf", hf_tokenizer=True)
    field = gguf.GGUFReader(str(out)).fields["codexlab.prompt_tokenizer"]
    recorded = bytes(field.parts[field.data[0]]).decode()
    assert recorded == ("hf" if kind == "newline-split" else "llama.cpp")
    # The same weights with the v1 tokenizer (same vocabulary size): llama.cpp splits prompts.
    v1 = tmp_path / "v1-tokenizer"
    shutil.copytree(src, v1)
    shutil.copy(TOKENIZERS / "codex-mini-v1.json", v1 / "tokenizer.json")
    out1 = export_gguf(v1, tmp_path / "v1.gguf")
    field = gguf.GGUFReader(str(out1)).fields["codexlab.prompt_tokenizer"]
    assert bytes(field.parts[field.data[0]]).decode() == "llama.cpp"
