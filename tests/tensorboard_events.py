"""Reading a run's TensorBoard event files back, for the tests that check what training logs there."""

from __future__ import annotations

import struct
from pathlib import Path

from tensorboardX.proto import event_pb2


def events(run_dir: Path) -> list[event_pb2.Event]:
    """Every event of the run's TensorBoard files (TFRecord framing: length, crc, data, crc)."""
    out = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            out.append(event_pb2.Event.FromString(data[offset + 12:offset + 12 + length]))
            offset += 12 + length + 4
    return out
