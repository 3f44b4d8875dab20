"""ssl_attention: attention maps of vision transformers (and Grad-CAM of CNNs), per layer and head."""

import logging

__version__ = "0.1.0"

# A library's loggers stay silent unless the application configures logging (Python's logging HOWTO).
logging.getLogger(__name__).addHandler(logging.NullHandler())
