"""ssl_attention: attention maps of vision transformers (and Grad-CAM of CNNs), per layer and head."""

__version__ = "0.1.0"
