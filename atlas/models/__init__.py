"""The models stage: every requested model's maps, from the cache or computed, locally or on Ray.

Its entry is ``atlas.models.stage.ModelStage``; this package's ``__init__`` imports nothing, so that the
command line's light commands (``atlas init``, ``--help``) never import torch.
"""
