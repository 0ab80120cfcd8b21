"""Preprocess stages: frames -> model input tensors (letterbox, resize, normalize, layout).

Importing this package registers the built-in stages.
"""

from edgert.preprocess import letterbox  # noqa: F401,E402
