"""The shipped built-in models that tests run against, read from the registry.

The family in ``data/models`` is replaced as a whole when it is retrained (v1's
0.1m-3m sizes gave way to v2's), so a test that needs a real shipped model takes its
name from here instead of writing a size into the test. A test that only needs a
family-shaped name for folders it makes itself keeps its own names.
"""

from __future__ import annotations

from codexlab.models.registry import builtin_model_names, builtin_models

#: The shipped base models, smallest first (empty in a checkout without weights).
SHIPPED: list[str] = builtin_model_names()

#: The smallest shipped base model (fastest to load and sample), or a name that is absent.
SMALLEST: str = SHIPPED[0] if SHIPPED else "codex-mini-absent"

#: The largest shipped base model (the figures' reference model), or a name that is absent.
LARGEST: str = SHIPPED[-1] if SHIPPED else "codex-mini-absent"

#: The largest shipped Codex-S model (``codex-mini-s-*``), else :data:`LARGEST`.
LARGEST_S: str = ([*builtin_models(variant="s")] or [LARGEST])[-1]
