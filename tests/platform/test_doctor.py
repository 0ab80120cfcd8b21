"""Doctor checks on DeviceInfo values (the CLI runs them on fixture trees in tests/cli)."""
from __future__ import annotations

import pytest

from edgert.platform.detect import DeviceInfo
from edgert.platform.doctor import OK, WARN, check_cuda_bindings


@pytest.mark.parametrize("versions, cuda, status, text", [
    ({"cuda-python": "13.0.3"}, "12.6.68", WARN, "pip install 'cuda-python>=12,<13'"),
    ({"cuda-python": "12.6.2"}, "12.6.68", OK, "cuda-python 12.6.2"),
    ({"pycuda": "2022.2"}, "11.4.315", OK, "pycuda 2022.2"),
    ({}, "11.4.315", WARN, "pip install 'edgert[trt]'"),
])
def test_cuda_bindings(versions, cuda, status, text):
    info = DeviceInfo(is_jetson=True, machine="aarch64", python="3.8.10", cuda=cuda,
                      versions=versions)
    check = check_cuda_bindings(info)
    assert check.status == status and text in check.render()
