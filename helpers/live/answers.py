"""Who answered: v1, v2 or an error, told apart by the petstore's body, and the
share of requests each version answered.

The petstore tells the versions apart by its body: v2's pets have ``status: "v2"``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import pandas as pd

    from helpers.lab import Lab

Target = Union["Lab", str]
ERRORS = "errors"


def base_url(target: Target) -> str:
    """The base URL requests go to: a Lab's gateway (``lab.proxy_url()``) or the string itself."""
    if isinstance(target, str):
        return target
    return target.proxy_url()


def version_of(status: int, body: bytes) -> str | None:
    """``"v2"`` or ``"v3"`` if the answer holds a pet with that status, ``"v1"`` for
    other pets, None for errors and bodies that are not the petstore's JSON."""
    if status >= 400:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        return None
    if isinstance(data, dict) and "id" not in data:  # e.g. {"code": 503, "message": ...}
        return None
    for later in ("v3", "v2"):
        if any(item.get("status") == later for item in items):
            return later
    return "v1"


def shares(df: pd.DataFrame) -> pd.DataFrame:
    """How many requests of a ``sample`` each version answered: one row per version
    (v1, v2, then ``errors`` if any failed) with ``requests`` and ``share`` (0..1)."""
    import pandas as pd

    versions = df["version"].where(df["version"].notna(), ERRORS) if len(df) else df["version"]
    counts = versions.value_counts()
    labels = ["v1", "v2", *sorted(str(v) for v in counts.index if v not in ("v1", "v2", ERRORS))]
    if ERRORS in counts.index:
        labels.append(ERRORS)
    requests = [int(counts.get(label, 0)) for label in labels]
    total = sum(requests)
    table = pd.DataFrame(
        {"requests": requests, "share": [r / total if total else 0.0 for r in requests]},
        index=pd.Index(labels, name="version"),
    )
    return table
