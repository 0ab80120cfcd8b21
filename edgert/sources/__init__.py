"""Sources: one stream of frames each, chosen by URI scheme.

Importing this package registers the built-in sources.
"""

from edgert.sources import local  # noqa: F401,E402
