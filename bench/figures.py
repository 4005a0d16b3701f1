"""What every benchmark returns: one figure, measured on the product and on its reference in the same run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    benchmark: str  # the table it belongs to: "ingest", "push latency", "inbox API", "websockets", ...
    measure: str  # what was measured, in words: "messages applied end to end per second"
    product: float
    reference: float | None  # the minimal reference measured in the same run; None when it has none
    unit: str  # "msg/s", "ms", "KiB", "statements", ...
    target: str  # the target in words: "≥ 0.7x reference", "p99 ≤ 2x reference + 20 ms"
    met: bool | None  # None: informational, no target
    note: str = ""  # how it was measured, or why it falls short

    @property
    def ratio(self) -> float | None:
        """product / reference (what "0.7x" means for a rate; for a time, higher is slower)."""
        if self.reference in (None, 0):
            return None
        return self.product / self.reference  # type: ignore[operator]


def at_least(product: float, reference: float, ratio: float) -> bool:
    """A rate target: the product reaches `ratio` times the reference."""
    return product >= ratio * reference


def at_most(product: float, reference: float, ratio: float, plus: float = 0.0) -> bool:
    """A time or size target: the product takes at most `ratio` times the reference (plus a constant)."""
    return product <= ratio * reference + plus
