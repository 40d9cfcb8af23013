"""codexlab: reproduce the figures of the Codex paper for any causal code language model.

The package is a flat kernel of one-job modules (problems, metrics, store, execution,
sampling, models, analysis, plotting, cli). Importing ``codexlab`` is cheap: nothing here
imports torch or transformers; the modules that need them import them themselves.
"""

__version__ = "0.1.0"
