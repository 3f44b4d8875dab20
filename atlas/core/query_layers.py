"""``--query-layers``: which layers' query-patch rows a build exports (see ``ssl_attention.query_rows``).

A value is ``none``, ``last``, ``all`` or a comma list of layer indices and ``last`` (e.g. ``8,11`` or
``0,last``). Unset, a build of the bundled sample exports the last layer and a build of your own images
none (rows cost ``heads x patches^2`` bytes per image, model and layer: about 0.8 MB for a ViT-B at 224 px).
"""

from __future__ import annotations

from atlas.core.limits import LAYER
from ssl_attention.errors import AtlasError
from ssl_attention.integers import shown, whole_number

SAMPLE_DEFAULT = "last"
OWN_IMAGES_DEFAULT = "none"


def parse_query_layers(text: str, flag: str = "--query-layers") -> str:
    """The canonical form of a ``--query-layers`` value (or of the option ``flag`` of the same form, e.g.
    ``--feature-layers``); AtlasError (one line) for a bad one."""
    words = [w.strip().lower() for w in str(text).split(",")]
    if words in (["none"], ["all"]):
        return words[0]
    chosen: list[str] = []
    for word in words:
        if word != "last":
            try:
                word = str(LAYER.check(word))
            except ValueError as exc:
                reason = f"layer {exc}" if whole_number(word) is not None else f"{shown(str(text))} is not " \
                    "none, last, all or a comma list of layer numbers (e.g. 11 or 8,11 or 0,last)"
                raise AtlasError(f"{flag}: {reason}") from None
        if word not in chosen:
            chosen.append(word)
    return ",".join(chosen)


def resolve_query_layers(spec: str, layers: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The layers of a model with ``layers`` layers that ``spec`` (canonical) names, ascending, and the
    named layers it lacks."""
    if spec == "none" or layers <= 0:
        return (), ()
    if spec == "all":
        return tuple(range(layers)), ()
    named = {layers - 1 if word == "last" else int(word) for word in spec.split(",")}
    return tuple(sorted(n for n in named if n < layers)), tuple(sorted(n for n in named if n >= layers))
