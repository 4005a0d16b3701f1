"""Pure helpers of the harness (no Django, no I/O): percentiles, rates, recovery, and the tables the run
prints and writes. Tested in tests/test_bench_stats.py."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from bench.figures import Figure


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks (numpy's default and
    PostgreSQL's percentile_cont); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    position = (len(ordered) - 1) * min(100.0, max(0.0, q)) / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def rate(count: int, seconds: float) -> float:
    """Items per second; 0 when nothing happened or no time passed."""
    return count / seconds if count > 0 and seconds > 0 else 0.0


def buckets(samples: Iterable[tuple[float, float]], start: float, width: float) -> dict[int, list[float]]:
    """(time, value) samples grouped by bucket index `floor((time - start) / width)` (negative before start)."""
    out: dict[int, list[float]] = {}
    for moment, value in samples:
        out.setdefault(math.floor((moment - start) / width), []).append(value)
    return out


def recovery_seconds(
    samples: Iterable[tuple[float, float]], since: float, threshold: float, width: float = 1.0
) -> float | None:
    """Seconds after `since` from which every `width`-second bucket's p99 stays at or under `threshold`.

    `samples` are (send time, latency). 0.0 when latency never exceeded it after `since`; None when the last
    bucket is still over it (not recovered within the samples)."""
    grouped = {index: values for index, values in buckets(samples, since, width).items() if index >= 0}
    if not grouped:
        return None
    last_bad = -1
    for index in sorted(grouped):
        p99 = percentile(grouped[index], 99)
        if p99 is not None and p99 > threshold:
            last_bad = index
    if last_bad == max(grouped):
        return None
    return (last_bad + 1) * width


def fmt(value: float | None, unit: str = "") -> str:
    """A figure for a table: thousands separators, few decimals, "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".rstrip() if unit else text


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def met_word(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def group(figures: Sequence[Figure]) -> dict[str, list[Figure]]:
    """Figures by benchmark, in the order they came."""
    out: dict[str, list[Figure]] = {}
    for figure in figures:
        out.setdefault(figure.benchmark, []).append(figure)
    return out


def text_table(figures: Sequence[Figure]) -> str:
    """The table the run prints: one block per benchmark."""
    headers = ("measure", "product", "reference", "ratio", "target", "met")
    lines: list[str] = []
    for benchmark, rows in group(figures).items():
        cells = [
            (
                f.measure,
                fmt(f.product, f.unit),
                fmt(f.reference, f.unit),
                fmt_ratio(f.ratio),
                f.target or "-",
                met_word(f.met),
            )
            for f in rows
        ]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        lines.append(f"== {benchmark}")
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for c in cells:
            lines.append(
                "  ".join(
                    (v.ljust(w) if i in (0, 4) else v.rjust(w))
                    for i, (v, w) in enumerate(zip(c, widths, strict=True))
                )
            )
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_tables(figures: Sequence[Figure]) -> str:
    """One Markdown table per benchmark, with each figure's note below its table."""
    parts: list[str] = []
    for benchmark, rows in group(figures).items():
        parts.append(f"### {benchmark}\n")
        parts.append("| measure | product | reference | ratio | target | met |")
        parts.append("|---|---:|---:|---:|---|---|")
        for f in rows:
            parts.append(
                f"| {_md(f.measure)} | {fmt(f.product, f.unit)} | {fmt(f.reference, f.unit)} | "
                f"{fmt_ratio(f.ratio)} | {_md(f.target or '-')} | {met_word(f.met)} |"
            )
        notes = [f for f in rows if f.note]
        if notes:
            parts.append("")
            for f in notes:
                parts.append(f"- *{_md(f.measure)}*: {_md(f.note)}")
        parts.append("")
    return "\n".join(parts)


def short_of_target(figures: Sequence[Figure]) -> list[str]:
    """One line per figure whose target was missed."""
    return [
        f"{f.benchmark}: {f.measure}: product {fmt(f.product, f.unit)}"
        + (f", reference {fmt(f.reference, f.unit)}" if f.reference is not None else "")
        + f" (target {f.target})"
        for f in figures
        if f.met is False
    ]
