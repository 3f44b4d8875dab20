"""Prompts for the text towers of CLIP/SigLIP, and which box label a prompt asks for (no torch needed)."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_PROMPT = "a photo of a {label}."


def phrase(label: str) -> str:
    """A box label as words in a prompt (``cat_head`` -> ``cat head``)."""
    return " ".join(label.replace("_", " ").split())


def box_label_prompts(labels: Sequence[str], template: str = DEFAULT_PROMPT) -> list[str]:
    """One prompt per distinct label, sorted: ``a photo of a {label}.`` (underscores as spaces)."""
    return [template.format(label=phrase(label)) for label in sorted(set(labels))]


def label_of_prompt(prompt: str, labels: Sequence[str], template: str = DEFAULT_PROMPT) -> str | None:
    """The box label a prompt asks for: the label whose default prompt or name it is, else the longest
    label it contains as words (case-insensitive; "rose window" before "window"); None if none."""
    for label in labels:
        if prompt == template.format(label=phrase(label)) or prompt.strip().lower() in (label.lower(), phrase(label)):
            return label
    words = f" {' '.join(''.join(c if c.isalnum() else ' ' for c in prompt.lower()).split())} "
    found = [label for label in labels if f" {phrase(label).lower()} " in words]
    return max(found, key=len) if found else None
