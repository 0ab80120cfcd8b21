"""Sinks: where results go (files, video, brokers, exporters).

Importing this package registers the built-in sinks.
"""

from edgert.sinks import jsonl, video  # noqa: F401,E402
from edgert.sinks import metrics  # noqa: F401,E402
from edgert.sinks import mqtt  # noqa: F401,E402
from edgert.sinks import rtsp  # noqa: F401,E402
