"""Inference engines behind one interface (``base.Engine``) and the ``infer`` stage.

Importing this package registers the built-in backends and the ``infer`` stage.
"""

from edgert.engines import infer, onnxruntime  # noqa: F401,E402
from edgert.engines import tensorrt  # noqa: F401,E402  (registers backend: tensorrt)
