"""Decoders: raw engine outputs -> detections / classifications.

Importing this package registers the built-in decoders.
"""

from edgert.postprocess import classify, nanodet  # noqa: F401,E402
