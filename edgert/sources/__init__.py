"""Sources: one stream of frames each, chosen by URI scheme.

Importing this package registers the built-in sources.
"""
from edgert.sources import (
    csi,  # noqa: F401,E402
    gst,  # noqa: F401,E402
    rtsp,  # noqa: F401,E402
    v4l2,  # noqa: F401,E402
)
