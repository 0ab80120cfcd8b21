"""Fixtures: the TensorRT stand-in per version, the fake CUDA memory, tiny ONNX models."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.engines import fake_cuda, fake_tensorrt
from tests.engines.models import tiny_model

VERSIONS = ["8.5.2", "10.3.0", "11.4.1"]


def install(version: str, monkeypatch: Any, cache_dir: Path, **cuda_state: Any) -> Any:
    """Make ``import tensorrt`` give the stand-in and ``edgert.cuda`` the fake memory."""
    mod = fake_tensorrt.make_module(version)
    monkeypatch.setitem(sys.modules, "tensorrt", mod)
    monkeypatch.setattr(fake_tensorrt.Builder, "num_DLA_cores", 2)
    fake_cuda.patch(monkeypatch, **cuda_state)
    monkeypatch.setenv("EDGERT_CACHE_DIR", str(cache_dir))
    return mod


@pytest.fixture(params=VERSIONS)
def trt(request: Any, monkeypatch: Any, tmp_path: Path) -> Any:
    """The stand-in ``tensorrt`` for each version (8.5 / 10.x / 11.x)."""
    return install(request.param, monkeypatch, tmp_path / "engine-cache")


@pytest.fixture
def trt_factory(monkeypatch: Any, tmp_path: Path) -> Any:
    """``trt_factory("10.3.0", integrated=True)`` for tests that pick the version."""
    def make(version: str, **cuda_state: Any) -> Any:
        return install(version, monkeypatch, tmp_path / "engine-cache", **cuda_state)
    return make


@pytest.fixture
def onnx_path(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "tiny.onnx")
