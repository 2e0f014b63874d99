"""rtool: how robust is an image classifier really.

`import rtool` loads the C++ operators (rtool._C) when they are built; every analysis is a subpackage.
"""
__version__ = "0.1.0"

from rtool.errors import UsageError  # noqa: E402
from rtool import ops  # noqa: E402  (registers torch.ops.rtool.*)

__all__ = ["UsageError", "ops", "__version__"]
