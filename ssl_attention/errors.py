"""User-facing errors: each carries one line that names the file or option and the problem."""


class AtlasError(Exception):
    """An error caused by bad input; its message is one line, shown without a traceback."""


class UnsupportedError(AtlasError):
    """A combination that does not exist, e.g. rollout per head or Grad-CAM on a ViT."""


class ModelLoadError(AtlasError):
    """An unknown model name, or a checkpoint that cannot be read."""


class ImageError(AtlasError):
    """An image file that cannot be decoded or used."""


class AnnotationError(AtlasError):
    """An annotation file that is malformed or does not match the images."""


class RandomWeightsWarning(UserWarning):
    """``load_model(..., weights="auto")`` could not have the pretrained weights and returned a randomly
    initialised model: its maps show no learned attention."""
# Why a pickled weights file (.bin, .pt, .pth, .ckpt) holding more than tensors is not loaded: one sentence
PICKLED_WEIGHTS_REFUSED = ("refused to load pickled weights holding objects other than tensors (they could run "
                           "code when loaded); convert the checkpoint to safetensors")


def readable(text: str) -> str:
    """``text`` as valid UTF-8: bytes of a file name that are not UTF-8 (kept by Python as lone surrogates)
    are shown as ``\\xNN`` escapes, e.g. ``caf\\xe9.jpg`` for the Latin-1 name ``café.jpg``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def first_line(exc: BaseException, limit: int = 240) -> str:
    """The first line of an exception's message (its type name if empty), cut to ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def describe_error(exc: BaseException) -> str:
    """An unexpected exception in one line: our own errors as they are, others with their type."""
    return first_line(exc) if isinstance(exc, AtlasError) else f"{type(exc).__name__}: {first_line(exc)}"
