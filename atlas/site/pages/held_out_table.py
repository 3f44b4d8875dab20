"""The leaderboard's held-out table (``--select-on``): per model x method, the best layer's and the best head's
in-sample figure (chosen and scored on every image) beside the held-out one (chosen on the selection part,
scored on the rest), from ``summary.json``'s ``held_out`` (:class:`atlas.metrics.summary.HeldOut`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atlas.metrics.summary import HeldOut, HeldOutEntry, HeldOutFigure
from ssl_attention.aggregate import Estimate

Shown = Callable[[Estimate], dict[str, str]]  # an estimate as the metric tables show it: {mean, ci} as text


def _figure(f: HeldOutFigure, shown: Shown) -> dict[str, Any]:
    """One figure as the table shows it, with its raw numbers for scripts and tests."""
    e = f.stat
    return {"choice": f"layer {f.layer}" if f.head == "fused" else f"layer {f.layer} h{int(f.head):02d}",
            "layer": f.layer, "head": f.head, **shown(e), "n": e.n, "raw": {"mean": e.mean, "lo": e.lo, "hi": e.hi}}


def held_out_context(held: HeldOut | None, model_ref: Callable[[str], dict[str, Any]],
                     shown: Shown) -> dict[str, Any] | None:
    """The template's ``held_out``: the split's numbers and one row per entry (best layers, then best heads);
    None without ``--select-on``. ``model_ref``: a model's link as the metric pages make it."""
    if held is None:
        return None

    def row(e: HeldOutEntry, kind: str) -> dict[str, Any]:
        return {"model": model_ref(e.model), "method": e.method, "kind": kind,
                "in_sample": _figure(e.in_sample, shown), "held_out": _figure(e.held_out, shown)}

    rows = [row(e, "layer") for e in held.leaderboard] + [row(e, "head") for e in held.best_heads]
    return {"fraction": f"{held.fraction:g}", "metric": held.metric, "n_selection": held.n_selection,
            "n_held_out": held.n_held_out, "rows": rows}
