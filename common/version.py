"""The version every Remora component reports (the face and the injector's status annotation alike)."""

from __future__ import annotations

from typing import Final

VERSION: Final = "0.1.0"
# What the injector writes into the remora.dev/status annotation: who injected, at which version.
INJECTOR_VERSION: Final = f"remora-injector/{VERSION}"
