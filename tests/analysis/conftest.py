"""Real photos (scikit-image) shared with the quantization tests."""
from tests.quant.conftest import photos  # noqa: F401
