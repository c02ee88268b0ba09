"""One precision vocabulary for training and inference: torch's dtype names, with the short forms as aliases.

Why: the predictor spoke `float32/bfloat16/float16` and the trainer `fp32/bf16/fp16`, so the same
setting had two spellings depending on the command. Both are accepted everywhere; the canonical
(long) name is what code compares, events report and checkpoints record. Torch-free (the CLI's
argparse choices and the GUI read it).
"""

from __future__ import annotations

from segstudio.core.errors import UsageError

__all__ = ["ALIASES", "PRECISIONS", "PRECISION_CHOICES", "PrecisionError", "canonical_precision"]

#: canonical names; "auto" lets the trainer/predictor choose for the device
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
#: what a command line accepts
PRECISION_CHOICES = PRECISIONS + tuple(ALIASES)


class PrecisionError(UsageError):
    """A precision name that is neither canonical nor an alias."""


def canonical_precision(name: str) -> str:
    """`bf16` -> `bfloat16`, `float32` -> `float32`; anything else is an error that lists the choices."""
    value = ALIASES.get(name, name)
    if value not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r}; choose one of: {', '.join(PRECISION_CHOICES)}")
    return value
