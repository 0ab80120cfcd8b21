"""edgert: vision pipelines from an x86 workstation to NVIDIA Jetson.

``import edgert`` needs only numpy, pyyaml and pydantic; everything heavy is
imported when first used.
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
