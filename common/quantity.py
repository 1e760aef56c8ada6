"""Kubernetes resource quantities ("250m", "1.5", "128Mi", "1e3") as exact Decimals, and back.

One grammar for everything that reads a quantity: the injector comparing a sidecar's resources
with the catalog's, the hardened memory-limit check, and `remora lint`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Final

_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_SUFFIX: Final = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
MAX_EXPONENT: Final = 30  # larger exponents are not real resource amounts


def parse(value: Any) -> Decimal | None:
    """The quantity in base units (cores, bytes), or None when it is not a valid quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or len(value) > 64:
        return None
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            exponent = int(suffix[1:])
            if abs(exponent) > MAX_EXPONENT:
                return None
            return Decimal(number).scaleb(exponent)
        return Decimal(number) * _SUFFIX[suffix]
    except (InvalidOperation, ValueError):
        return None


def format_cpu(cores: Decimal) -> str:
    """'250m' under one core, '1.5 cores' from one core up."""
    if cores < 1:
        return f"{_trim(cores * 1000)}m"
    return f"{_trim(cores)} core{'' if cores == 1 else 's'}"


def format_memory(size: Decimal) -> str:
    """Binary units, one decimal at most: '64Mi', '1.5Gi'."""
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if size >= _SUFFIX[unit]:
            return f"{_trim((size / _SUFFIX[unit]).quantize(Decimal('0.1')))}{unit}"
    return _trim(size)


def _trim(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.001")) if value != value.to_integral_value() else value
    text = format(rounded.normalize(), "f")
    return text
