"""``edgert`` CLI with the runtime's test doubles registered (for subprocess tests).

    python -m tests.runtime.serve_doubles run PIPELINE.yaml [...]

Exactly ``python -m edgert ...`` (same parser, same one-line errors, same exit
codes) except that importing :mod:`tests.runtime.doubles` first makes the
``test://`` source and the ``test-*`` stages available to the pipeline file.
"""
from __future__ import annotations

import sys

import tests.runtime.doubles  # noqa: F401 - registers the doubles
from edgert.cli.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
