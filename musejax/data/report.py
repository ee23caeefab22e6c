"""What a corpus build loaded and what it skipped, and why: counts by reason plus every failure."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import Any

from musejax.data.readers import ReadFailure


@dataclasses.dataclass
class BuildReport:
    """The outcome of reading one corpus. `failures` lists every skipped file or tune."""

    corpus: str = ""
    n_files: int = 0
    n_loaded: int = 0
    failures: list[ReadFailure] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    @property
    def loaded_fraction(self) -> float:
        """Pieces loaded / pieces attempted (1.0 for an empty build)."""
        attempted = self.n_loaded + self.n_failed
        return self.n_loaded / attempted if attempted else 1.0

    def counts_by_reason(self) -> dict[str, int]:
        """Failure counts per reason, most frequent first."""
        return dict(collections.Counter(f.reason for f in self.failures).most_common())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for build logs and cache metadata)."""
        return {
            "corpus": self.corpus,
            "n_files": self.n_files,
            "n_loaded": self.n_loaded,
            "n_failed": self.n_failed,
            "seconds": round(self.seconds, 3),
            "counts_by_reason": self.counts_by_reason(),
            "failures": [f._asdict() for f in self.failures],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildReport:
        """Inverse of `to_dict` (for a report kept next to a cache)."""
        return cls(corpus=data["corpus"], n_files=data["n_files"], n_loaded=data["n_loaded"],
                   failures=[ReadFailure(**f) for f in data["failures"]], seconds=data["seconds"])

    def summary(self, max_listed: int = 10) -> str:
        """A small text table: totals, failures by reason, and the first few failures."""
        lines = [
            f"corpus {self.corpus or '-'}: {self.n_loaded} pieces loaded, {self.n_failed} skipped "
            f"({100 * self.loaded_fraction:.1f}% loaded) from {self.n_files} files in {self.seconds:.1f} s",
        ]
        if self.failures:
            counts = self.counts_by_reason()
            width = max(len(reason) for reason in counts)
            lines.append("  skipped by reason:")
            lines += [f"    {reason:<{width}}  {count:>6}" for reason, count in counts.items()]
            lines.append("  skipped:")
            for failure in self.failures[:max_listed]:
                tune = f" #{failure.tune}" if failure.tune is not None else ""
                lines.append(f"    {failure.path}{tune}: {failure.reason}: {failure.detail}")
            if self.n_failed > max_listed:
                lines.append(f"    ... and {self.n_failed - max_listed} more (see the report's failures)")
        return "\n".join(lines)


def merge_reports(reports: Sequence[BuildReport]) -> BuildReport:
    """One report over several corpora (counts and seconds summed, failures concatenated)."""
    return BuildReport(corpus="+".join(r.corpus for r in reports), n_files=sum(r.n_files for r in reports),
                       n_loaded=sum(r.n_loaded for r in reports), failures=[f for r in reports for f in r.failures],
                       seconds=sum(r.seconds for r in reports))
