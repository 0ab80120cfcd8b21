"""The skip every GPU test in the suite uses: explicit, with the same reason everywhere.

CI has no GPU, so these tests skip there (also under CI=true: a GPU is never a
CI service); they run for real on the device machine.
"""
from __future__ import annotations

import pytest

from edgert import cuda

GPU_REASON = "needs a CUDA GPU; runs on the device machine"

skip_without_gpu = pytest.mark.skipif(not cuda.available(), reason=GPU_REASON)
