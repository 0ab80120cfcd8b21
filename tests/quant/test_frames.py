"""Calibration and held-out frames: evenly sampled, disjoint, from folders and videos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgert.errors import UsageError
from edgert.quant.frames import load_frames, split_indices


@pytest.mark.parametrize("total,count,held", [(100, 10, 5), (18, 12, 6), (1800, 64, 16),
                                              (7, 7, 0), (30, 1, 1)])
def test_split_is_disjoint_and_complete(total: int, count: int, held: int) -> None:
    calib, held_out = split_indices(total, count, held)
    assert len(calib) == count and len(held_out) == held
    assert not set(calib) & set(held_out)
    assert all(0 <= i < total for i in calib + held_out)
    if held:
        # held-out frames span the source, not one end of it
        assert min(held_out) < total / 2 < max(held_out) or held == 1


def test_too_few_frames_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="10 frames"):
        split_indices(10, 8, 4)


def test_folder(photos: Path) -> None:
    fs = load_frames(photos, 8, 4)
    assert len(fs.calibration) == 8 and len(fs.held_out) == 4
    assert not set(fs.calibration_ids) & set(fs.held_out_ids)
    assert fs.calibration[0].dtype == np.uint8 and fs.calibration[0].shape[2] == 3
    assert fs.describe()["available"] == 24


def test_video_frames_are_the_indexed_ones(tmp_path: Path, photos: Path) -> None:
    """Each video frame carries its index as brightness, so the pick is checkable."""
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), i * 6, np.uint8))
    writer.release()
    fs = load_frames(path, 6, 3)
    assert fs.total == 40
    assert not set(fs.calibration_ids) & set(fs.held_out_ids)
    for idx, frame in zip(fs.calibration_ids + fs.held_out_ids, fs.calibration + fs.held_out):
        assert abs(float(frame.mean()) - idx * 6) < 3


def test_missing_source_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such"):
        load_frames(tmp_path / "nope", 1, 0)
    with pytest.raises(UsageError, match="no images"):
        load_frames(tmp_path, 1, 0)
