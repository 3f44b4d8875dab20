"""What a model can offer, as one value: the ``Capabilities`` the method registry asks of it.

A model's capabilities (its kind, CLS token, register tokens, classifier head, text tower) decide which
methods and head statistics of ``ssl_attention.methods`` it offers. A method states what it needs as
``Requirement``s, each with the one readable reason given when a model lacks it; a new need is one
``Requirement`` (of an existing capability, or of a new field here and where the adapters fill it in).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """What one model offers the methods: its kind and the tokens and heads it has."""

    kind: str  # "vit" | "cnn"
    cls: bool = False  # a CLS token (ViTs)
    registers: int = 0  # register tokens (ViTs)
    classifier: bool = False  # a classifier head whose class scores a gradient method can explain
    text_tower: bool = False  # a text tower whose prompt similarities a gradient method can explain
    probe: bool = False  # a multihead-attention pooling head (a learned probe query: SigLIP, SigLIP2)

    @property
    def prefix(self) -> bool:
        """Whether it has tokens before the patches (CLS or registers)."""
        return self.cls or self.registers > 0

    @property
    def target(self) -> bool:
        """Whether it has a score to explain (a classifier head or a text tower)."""
        return self.classifier or self.text_tower


@dataclass(frozen=True)
class Requirement:
    """One thing a method needs of a model: a capability (a field or property of ``Capabilities``, true
    when present) and the reason given when a model lacks it."""

    capability: str
    reason: str  # completes "... does not support METHOD: ", e.g. "it has no CLS token"

    def met_by(self, capabilities: Capabilities) -> bool:
        """Whether ``capabilities`` have it."""
        return bool(getattr(capabilities, self.capability))


CLS_TOKEN = Requirement("cls", "it has no CLS token")
REGISTERS = Requirement("registers", "it has no register tokens")
SCORE_TO_EXPLAIN = Requirement("target", "it has no score to explain (relevance needs a classifier head or a "
                                         "CLIP/SigLIP text tower; a self-supervised backbone has no scalar to explain)")
PROBE_HEAD = Requirement("probe", "it has no attention-pooling head (a learned probe query, as SigLIP and "
                                  "SigLIP2 pool their patches)")
