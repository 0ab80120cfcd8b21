"""Sources: one stream of frames each, chosen by URI scheme.

Importing this package registers the built-in sources.
"""

from edgert.sources import local  # noqa: F401,E402
from edgert.sources import rtsp  # noqa: F401,E402
from edgert.sources import v4l2  # noqa: F401,E402
from edgert.sources import gst  # noqa: F401,E402
from edgert.sources import csi  # noqa: F401,E402
