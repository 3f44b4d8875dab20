"""Model adapters: load a vision model (transformers or timm) and describe its token layout."""

from ssl_attention.models.base import VisionModel
from ssl_attention.models.loader import load_model
from ssl_attention.models.specs import DEFAULT_MODELS, ModelRequest, parse_model_request

__all__ = ["DEFAULT_MODELS", "ModelRequest", "VisionModel", "load_model", "parse_model_request"]
