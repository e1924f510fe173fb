"""`auditkit demo`: the embedded default, driven through the simulated rack.

The simulated Convox rack, its shell and its wire-exact client live in `convox_sim/`, a sibling package of a
checkout that the wheel does not carry. This package is the one part of auditkit that uses it, and only once
`load_sim()` has found it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from auditkit.errors import AuditkitError


def load_sim(module: str) -> ModuleType:
    """`convox_sim.<module>`, importable already or found beside the auditkit package of a checkout (an editable
    install); else a clear error."""
    try:
        return importlib.import_module(f"convox_sim.{module}")
    except ImportError:
        checkout = Path(__file__).resolve().parent.parent.parent
        if not (checkout / "convox_sim" / "__init__.py").is_file():
            raise AuditkitError("the demo needs the simulated rack (convox_sim/), which comes with a checkout of "
                                "auditkit, not with the wheel: clone the repository and run `make demo`") from None
        sys.path.insert(0, str(checkout))
        return importlib.import_module(f"convox_sim.{module}")
