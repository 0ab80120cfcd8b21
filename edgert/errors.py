"""The two kinds of failure edgert knows.

``EdgertError`` and its subclasses are *user* errors: bad YAML, a missing file,
an unreadable video, a missing optional dependency.  The CLI prints them as one
line (no traceback) and exits with ``exit_code``.  Anything else that escapes is
a bug in edgert and is shown with a traceback.
"""
from __future__ import annotations

from typing import Optional


class EdgertError(Exception):
    """A user-facing error. ``str(err)`` is the complete one-line message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(EdgertError):
    """Bad command-line usage or configuration (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A pipeline-file error, located by file, line, column and key path.

    Rendered as ``path/pipeline.yaml:LINE:COL: key.path: message``; parts that
    are unknown are left out.
    """

    def __init__(
        self,
        message: str,
        *,
        key_path: str = "",
        file: Optional[str] = None,
        line: Optional[int] = None,
        col: Optional[int] = None,
    ) -> None:
        self.raw_message = message
        self.key_path = key_path
        self.file = file
        self.line = line
        self.col = col
        super().__init__(self._render())

    def located(
        self, file: Optional[str], line: Optional[int], col: Optional[int]
    ) -> "ConfigError":
        """A copy of this error with its location filled in."""
        return ConfigError(
            self.raw_message, key_path=self.key_path, file=file, line=line, col=col
        )

    def _render(self) -> str:
        prefix = ""
        if self.file:
            prefix = self.file
            if self.line is not None:
                prefix += ":%d" % self.line
                if self.col is not None:
                    prefix += ":%d" % self.col
            prefix += ": "
        key = (self.key_path + ": ") if self.key_path else ""
        return prefix + key + self.raw_message


class RuntimeFailure(EdgertError):
    """The pipeline was valid but could not run (unreadable video, corrupt model)."""

    exit_code = 1


class MissingDependency(EdgertError):
    """An optional dependency is not installed; the message names the extra."""

    exit_code = 1
