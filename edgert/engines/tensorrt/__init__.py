"""TensorRT backend: on-device engine builds (GPU/DLA, INT8, sparsity), caches, runtime.

Importing this package registers ``backend: tensorrt``; TensorRT itself and
CUDA are imported only when an engine is built or loaded.
"""
from edgert.engines.tensorrt.loader import available, is_available, load_tensorrt

__all__ = ["available", "is_available", "load_tensorrt"]
