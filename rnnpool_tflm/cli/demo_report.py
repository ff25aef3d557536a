"""What both demos (classifier and face) share about their report: report.json written
atomically with NumPy scalars and paths made JSON, and the aligned summary table."""

from __future__ import annotations

import json
import pathlib
from typing import Dict, Sequence, Tuple

import numpy as np

from ..core.files import atomic_write_text


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, pathlib.Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_report(out: pathlib.Path, report: Dict) -> pathlib.Path:
    """OUT/report.json (atomic)."""
    return atomic_write_text(out / "report.json", json.dumps(report, indent=2, default=_json_default) + "\n")


def format_rows(rows: Sequence[Tuple[str, str]]) -> str:
    """(label, value) rows as an indented two-column table."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


__all__ = ["write_report", "format_rows"]
