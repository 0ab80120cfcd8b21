"""Preprocess stages: frames -> model input tensors (letterbox, resize, normalize, layout).

Importing this package registers the built-in stages.
"""
