"""Metric records: one JSON object per line in `metrics.jsonl` plus TensorBoard scalars (tensorboardX); sample
pictures and audio go to TensorBoard only.

Records look like `{"step": 100, "split": "train", "nll": 31.2, ...}`; `split` is "train", "valid", "test"
or "final". Values are plain floats so the file diff-compares across runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


class MetricWriter:
    """Appends metric records to `<run_dir>/metrics.jsonl` and to TensorBoard event files in the run dir."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True, resume_step: int | None = None,
                 enabled: bool = True) -> None:
        """`resume_step`: drop records after it (a resumed run rewrites them); `enabled=False`: write nothing
        (processes other than the first on a multi-host run)."""
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        self.enabled = enabled
        self._tensorboard = None
        if not enabled:
            return
        if tensorboard:
            from tensorboardX import SummaryWriter

            # purge_step makes TensorBoard drop events a resumed run is about to write again
            self._tensorboard = SummaryWriter(logdir=str(self.run_dir), flush_secs=30, purge_step=resume_step or None)
        if resume_step is not None:
            self.truncate_after(resume_step)

    def write(self, step: int, split: str, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "split": split}
        record.update({key: _plain(value) for key, value in values.items()})
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            for key, value in record.items():
                if key not in ("step", "split") and isinstance(value, float) and math.isfinite(value):
                    self._tensorboard.add_scalar(f"{split}/{key}", value, global_step=int(step))

    def image(self, tag: str, image_hwc: Any, step: int) -> None:
        """An (H, W, 3) uint8 picture in TensorBoard (nothing in metrics.jsonl)."""
        if self._tensorboard is not None:
            self._tensorboard.add_image(tag, image_hwc, global_step=int(step), dataformats="HWC")

    def audio(self, tag: str, samples: Any, sample_rate: int, step: int) -> None:
        """Mono float audio in [-1, 1] in TensorBoard (nothing in metrics.jsonl)."""
        if self._tensorboard is not None:
            self._tensorboard.add_audio(tag, samples, global_step=int(step), sample_rate=int(sample_rate))

    def truncate_after(self, step: int) -> None:
        """Drop records newer than `step` (written after the checkpoint a resumed run restarts from)."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (int, bool, str)) or value is None:
        return value
    return float(value)


def read_metrics(run_dir: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (optionally only one split)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [r for r in records if split is None or r["split"] == split]
