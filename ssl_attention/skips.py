"""``Skip``: something a reader or a build stage left out, and why (one line for the user and the report).

Readers return their skips with their results instead of filling lists passed in; the build logs them
all through one place (``atlas.build.Build.skip``), which prints the line and keeps it for
``OUT/report.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssl_attention.errors import readable


@dataclass(frozen=True)
class Skip:
    """One skipped item: the ``stage`` that skipped it, its ``subject`` (a file, box or model) and why."""

    stage: str  # "images", "annotations", "models", "methods", "compute"
    subject: str  # e.g. the file path or "model NAME"; empty when the reason says it all
    reason: str

    @property
    def line(self) -> str:
        """The one line shown in the CLI output and kept in ``report.json`` (valid UTF-8, see ``readable``)."""
        return readable(f"{self.subject}: {self.reason}" if self.subject else self.reason)

    @classmethod
    def from_error(cls, stage: str, message: str) -> Skip:
        """A skip from a one-line error message ``SUBJECT: REASON`` (the convention of ``AtlasError``)."""
        subject, sep, reason = message.partition(": ")
        return cls(stage, subject, reason) if sep else cls(stage, "", message)
