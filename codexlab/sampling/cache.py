"""A preallocated KV cache whose rows can hold different prompts (left-aligned to one column).

What it is for: the decode loop of :mod:`~codexlab.sampling.engine`. Every row's prompt ends
at the same buffer column ``P`` (shorter prompts are left-padded and masked), so each decode
step writes all rows' new key/value at one shared column ``ptr``. That makes it possible to

* prefill each prompt **once** and copy its KV into the rows of its n samples (instead of
  ``generate``'s n identical prefills),
* mix prompts in one batch, and drop finished rows (``select``),
* avoid ``torch.cat`` growth: ``DynamicCache`` copies the whole cache every step, which at
  200 rows x 450 tokens is hundreds of MB per step on a CPU.

Two modes: *growing* (CPU/MPS: attention sees only the filled columns ``[:ptr+1]``, so early
steps are cheap) and *static* (CUDA graphs: every row writes at its own column ``cols[row]``
so a finished row can be refilled with a new sample at once; attention always sees all
``S`` columns, masked; shapes never change and nothing syncs with the host).

It plugs into any Hugging Face decoder whose attention calls ``cache.update(k, v, layer_idx)``
on full-attention layers (Llama, Qwen2, GPT-2, Mistral without sliding window, ...). What it is
not for: sliding-window or linear-attention layers (the engine falls back to one prompt per
batch with the model's own ``DynamicCache`` there), or beam search.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class SlotLayer(DynamicLayer):
    """One layer's preallocated ``(rows, heads, S, head_dim)`` key and value buffers.

    Subclassing :class:`DynamicLayer` keeps every method the model and the mask code may call
    (``get_mask_sizes``, ``is_sliding``, offsets ...) while ``update`` writes in place.
    """

    def __init__(self, owner: SlotCache, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.owner = owner
        self.keys = keys
        self.values = values
        self.device = keys.device
        self.is_initialized = True
        self.is_compileable = owner.static

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the step's key/value at the shared column(s) and return what attention sees."""
        owner = self.owner
        q = key_states.shape[-2]
        if owner.static:
            # Each row writes its one new token at its own column (rows are at different
            # points of different samples); shapes stay fixed for CUDA graphs.
            b, h, _, d = self.keys.shape
            idx = owner.cols.view(b, 1, 1, 1).expand(b, h, q, d)
            self.keys.scatter_(2, idx, key_states.to(self.keys.dtype))
            idx = owner.cols.view(b, 1, 1, 1).expand(b, self.values.shape[1], q,
                                                      self.values.shape[-1])
            self.values.scatter_(2, idx, value_states.to(self.values.dtype))
            return self.keys, self.values
        p = int(owner.ptr)
        self.keys[:, :, p : p + q] = key_states
        self.values[:, :, p : p + q] = value_states
        return self.keys[:, :, : p + q], self.values[:, :, : p + q]

    def get_seq_length(self) -> Any:
        """Return the shared write column (growing mode).

        In static mode rows have their own columns and validity comes from the padding
        mask alone, so the query is placed at the last column: the causal rule
        ``kv <= q + offset`` then admits every column and the mask decides.
        """
        if self.owner.static:
            return self.keys.shape[-2] - 1
        return self.owner.ptr

    def get_max_length(self) -> int:
        """Return the buffer length ``S``."""
        return self.keys.shape[-2]

    def get_mask_sizes(self, query: Any, *args: Any) -> tuple[int, int]:
        """Return ``(kv_length, kv_offset)`` for the mask builder.

        Accepts the query length (transformers >= 5.2x) or ``cache_position`` (older 4.x/5.x).
        """
        q = query.shape[0] if isinstance(query, torch.Tensor) else int(query)
        if self.owner.static:
            return self.keys.shape[-2], 0
        return int(self.owner.ptr) + q, 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the given rows (copies just the filled columns)."""
        p = int(self.owner.ptr)
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_empty((len(indices), *old.shape[1:]))
            new[:, :, :p] = old[indices, :, :p]
            setattr(self, name, new)


class SlotCache(DynamicCache):
    """The per-batch cache: one :class:`SlotLayer` per decoder layer and a shared pointer.

    Args:
        layer_shapes: ``(key_shape, value_shape)`` per layer, each ``(heads, head_dim)``.
        rows: Batch rows.
        length: Buffer columns ``S`` (longest prompt in the batch + ``max_new_tokens``).
        dtype: Buffer dtype (the model's).
        device: Buffer device.
        static: CUDA-graph mode (fixed shapes, per-row write columns).
        prompt_end: Growing mode only: columns ``[:prompt_end]`` are zeroed (left padding is
            read, masked, by attention, and must hold finite numbers: a masked NaN still
            poisons the weighted sum); later columns are always written before being read, so
            they are left uninitialised (zeroing them cost ~2% of a CPU run).
    """

    def __init__(
        self,
        layer_shapes: list[tuple[tuple[int, int], tuple[int, int]]],
        rows: int,
        length: int,
        dtype: torch.dtype,
        device: torch.device,
        static: bool = False,
        prompt_end: int | None = None,
    ) -> None:
        super().__init__()
        self.static = static
        self.ptr: Any = 0
        #: Static mode: each row's write column (its prompt length + tokens decoded so far).
        self.cols = torch.zeros((rows,), dtype=torch.long, device=device)
        self.layer_class_to_replicate = None
        layers = []
        for (kh, kd), (vh, vd) in layer_shapes:
            if static or prompt_end is None:
                k = torch.zeros((rows, kh, length, kd), dtype=dtype, device=device)
                v = torch.zeros((rows, vh, length, vd), dtype=dtype, device=device)
            else:
                k = torch.empty((rows, kh, length, kd), dtype=dtype, device=device)
                v = torch.empty((rows, vh, length, vd), dtype=dtype, device=device)
                k[:, :, :prompt_end].zero_()
                v[:, :, :prompt_end].zero_()
            if static:
                # Fixed addresses let CUDA graphs replay in-place cache writes.
                torch._dynamo.mark_static_address(k)
                torch._dynamo.mark_static_address(v)
            layers.append(SlotLayer(self, k, v))
        self.layers = layers

    @property
    def length(self) -> int:
        """Buffer columns ``S``."""
        return self.layers[0].keys.shape[-2]

    @property
    def rows(self) -> int:
        """Batch rows."""
        return self.layers[0].keys.shape[0]

    def set_ptr(self, value: int) -> None:
        """Set the shared write column (growing mode)."""
        self.ptr = int(value)

    def advance(self, q: int = 1) -> None:
        """Move the shared write column after a forward pass over ``q`` tokens (growing)."""
        self.ptr = int(self.ptr) + q

    def cache_position(self, q: int) -> torch.Tensor:
        """Return the ``cache_position`` older transformers releases want for ``q`` new tokens."""
        if self.static:
            if getattr(self, "_last_col", None) is None:
                self._last_col = torch.full((1,), self.length - 1, dtype=torch.long,
                                            device=self.cols.device)
            return self._last_col
        return torch.arange(self.ptr, self.ptr + q, device=self.cols.device)

    def write_rows(self, layer_kv: list[tuple[torch.Tensor, torch.Tensor]],
                   rows: torch.Tensor) -> None:
        """Copy one prompt's prefilled KV into columns ``[0, L)`` of ``rows`` (static mode)."""
        for layer, (k, v) in zip(self.layers, layer_kv, strict=True):
            n = k.shape[-2]
            layer.keys[rows, :, :n] = k.to(layer.keys.dtype)
            layer.values[rows, :, :n] = v.to(layer.values.dtype)

    def write_prompt(self, layer_kv: list[tuple[torch.Tensor, torch.Tensor]],
                     rows: slice, end: int) -> None:
        """Copy one prompt's prefilled KV (batch 1) into ``rows``, ending at column ``end``.

        Args:
            layer_kv: Per layer ``(keys, values)`` of shape ``(1, heads, L, head_dim)``.
            rows: The rows (this prompt's samples) to fill.
            end: Column after the prompt's last token (the batch's shared prompt end ``P``).
        """
        for layer, (k, v) in zip(self.layers, layer_kv, strict=True):
            n = k.shape[-2]
            layer.keys[rows, :, end - n : end] = k.to(layer.keys.dtype)
            layer.values[rows, :, end - n : end] = v.to(layer.values.dtype)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the given rows in every layer."""
        for layer in self.layers:
            layer.batch_select_indices(indices)

    def get_seq_length(self, layer_idx: int = 0) -> Any:
        """Return the shared write column (static mode: the last column, see SlotLayer)."""
        return self.layers[0].get_seq_length()

    def bytes_per_row(self) -> int:
        """Return the buffer bytes one row costs (for batch sizing)."""
        total = 0
        for layer in self.layers:
            total += layer.keys[0].numel() * layer.keys.element_size()
            total += layer.values[0].numel() * layer.values.element_size()
        return total
