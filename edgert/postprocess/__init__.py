"""Decoders: raw engine outputs -> detections / classifications.

Importing this package registers the built-in decoders.
"""
