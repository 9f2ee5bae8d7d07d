"""The one place a row's status is decided, from what its measurement found.

In this order, the first that holds: `skipped` (nothing could be measured here: why),
`failed` (an error, the device's own error report, or nothing measured: why), `inaccurate`
(the outputs are outside their precision's tolerance: by how much), `unstable` (measured, but
the figure is shaky: the reasons in words, `stability`), else `ok`. Every producer of a row
(a measurement, the rounds combined, a max-rate search, an executor that could not reach a
node) states its facts and calls `decide`.
"""

from __future__ import annotations

from typing import Any


def decide(fields: dict[str, Any], *, skipped: str | None = None, failed: str | None = None,
           inaccurate: str | None = None) -> dict[str, Any]:
    """`fields` with `status` and `error` set (see the module docstring); `stability` is read from it."""
    out = dict(fields)
    if skipped:
        out.update(status="skipped", error=skipped)
    elif failed:
        out.update(status="failed", error=failed)
    elif inaccurate:
        out.update(status="inaccurate", error=inaccurate)
    elif out.get("stability"):
        out.update(status="unstable", error=out["stability"])
    else:
        out.update(status="ok", error="")
    return out
