"""Sinks: where results go (files, video, brokers, exporters).

Importing this package registers the built-in sinks.
"""

from edgert.sinks import jsonl, video  # noqa: F401,E402
