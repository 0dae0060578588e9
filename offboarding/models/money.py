"""Money as Decimal with two places: floats are refused because they cannot hold cents exactly.

Amounts are bounded (MAX_AMOUNT): Decimal's context holds 28 digits, and an amount of 26
digits, or ``1E+30``, passed validation and then failed every settlement computation.
With at most a few thousand lines of at most 12 integer digits, every sum a statement
makes stays far inside that precision."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

CURRENCIES = frozenset({
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD",
    "INR", "JPY", "MXN", "NOK", "NZD", "PLN", "SEK", "SGD", "USD", "ZAR",
})


MAX_AMOUNT = Decimal("999999999999.99")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected an amount like '1200.00', got {value!r}")
    if isinstance(value, float):
        raise ValueError(
            f"amount {value!r} is a float; write money as a string such as '{value:.2f}' "
            "so no cent is lost to rounding"
        )
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | str):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"expected an amount like '1200.00', got {value!r}") from None
    else:
        raise ValueError(f"expected an amount like '1200.00', got {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError(f"expected a finite amount, got {value!r}")
    if abs(amount) > MAX_AMOUNT:
        raise ValueError(f"amount {value!r} is out of range; amounts are at most "
                         f"{MAX_AMOUNT:,} either way")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"amount {value!r} has more than two decimal places")
    return amount.quantize(Decimal("0.01"))


Money = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="always"),
]
"""An amount with exactly two decimal places, serialised as a string ("1200.00")."""
