"""The one compiled-artifact cache: `<root>/<kind>/<digest>/`, keyed by everything that changes it.

An artifact is built in a private `<digest>.tmp-<pid>` directory and renamed into place
when done, so a killed compile leaves no half artifact behind and two workers racing for the
same key keep whichever finished first. `key.json` beside the artifact holds its key.
A `None` key (a user's module, which can change under the same name) is never cached: it is
built into a private directory each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_FILE = "key.json"


@dataclass(frozen=True)
class Entry:
    """Where an artifact lives, whether it was there already, and how long building it took."""

    path: Path
    hit: bool | None  # None: not cacheable
    build_s: float | None  # None on a hit


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


def get_or_build(root: Path, kind: str, key: dict[str, Any] | None,
                 build: Callable[[Path], float | None], name_key: dict[str, Any] | None = None) -> Entry:
    """The artifact for `key` under `root/kind`, building it with `build(directory)` on a miss.

    `build` may return the seconds to count as the build (e.g. the compile alone); else the
    whole call is timed. With `key` None the artifact is built privately, never shared
    (`name_key` then names its directory).
    """
    stored = key if key is not None else (name_key or {})
    d = digest(stored)
    final = Path(root) / kind / d
    if key is not None and (final / KEY_FILE).is_file():
        return Entry(final, True, None)
    tmp = final.with_name(f"{d}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    counted = build(tmp)
    build_s = counted if counted is not None else time.perf_counter() - t0
    (tmp / KEY_FILE).write_text(json.dumps(stored, sort_keys=True, indent=1, default=str))
    if key is None:  # not cacheable (a user's module): keep it private
        return Entry(tmp, None, build_s)
    with contextlib.suppress(OSError):  # another worker finished first: keep theirs
        tmp.rename(final)
    shutil.rmtree(tmp, ignore_errors=True)
    return Entry(final, False, build_s)
