"""Sinks: where results go (files, video, brokers, exporters).

Importing this package registers the built-in sinks.
"""
from edgert.sinks import (
    metrics,  # noqa: F401,E402
    mqtt,  # noqa: F401,E402
)
