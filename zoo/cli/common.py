"""What every ``zoo`` sub-command shares: the user-error type and the plain-text table."""
from __future__ import annotations

__all__ = ["UserError", "format_table"]


class UserError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def format_table(rows: list[dict[str, str]]) -> str:
    """A plain-text table of ``rows`` (dicts with the same keys)."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys), "  ".join("-" * widths[k] for k in keys)]
    lines += ["  ".join(r[k].ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)
