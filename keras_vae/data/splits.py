"""TFDS-style split strings, `"train[:90%]+test"`, parsed once for every source.

Arrays, IDX files and TFDS all take the same split text; parsing it here, with TFDS' rounding
of percent bounds, makes `"train[:90%]"` select the same examples whichever source serves it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_SPLIT_RE = re.compile(
    r"^\s*(?P<name>[\w.-]+)\s*"
    r"(?:\[\s*(?P<start>[+-]?\d+(?:\.\d+)?%?)?\s*:\s*(?P<stop>[+-]?\d+(?:\.\d+)?%?)?\s*\])?\s*$"
)


@dataclasses.dataclass(frozen=True)
class SplitPart:
    """One term of a split sum: a split name and an optional slice, e.g. `train[:90%]`."""

    name: str
    start: str | None
    stop: str | None

    def indices(self, num_examples: int) -> slice:
        """The Python slice this part selects from `num_examples` examples (TFDS rounding)."""
        if self.start is None and self.stop is None:
            return slice(None)
        return slice(self._bound(self.start, num_examples), self._bound(self.stop, num_examples))

    @staticmethod
    def _bound(text: str | None, num_examples: int) -> int | None:
        if text is None:
            return None
        if text.endswith("%"):
            # Same "closest" rounding as TFDS, so both paths select the same examples.
            return int(round(float(text[:-1]) * num_examples / 100.0))
        return int(text)


def parse_split(split: Any) -> list[SplitPart]:
    """Parses `"train"`, `"train[:90%]"`, `"train[1000:2000]"`, `"train+test[:50%]"`.

    Example:

    >>> [part.name for part in parse_split("train[:10%]+test")]
    ['train', 'test']
    >>> parse_split("train[:10%]")[0].indices(50)
    slice(None, 5, None)
    """
    if not isinstance(split, str) or not split.strip():
        raise ValueError(f"`split` must be a non-empty string. Received: {split!r}")
    parts = []
    for text in split.split("+"):
        match = _SPLIT_RE.match(text)
        if match is None:
            raise ValueError(
                f"Invalid split {split!r}: expected a split name with an optional slice, e.g. "
                "'train', 'test', 'train[:90%]', 'train[90%:]', 'train[1000:2000]', 'train+test'."
            )
        start, stop = match["start"], match["stop"]
        units = {bound.endswith("%") for bound in (start, stop) if bound is not None}
        if len(units) > 1:
            raise ValueError(
                f"Invalid split {split!r}: do not mix percent and absolute bounds in one slice."
            )
        for bound in (start, stop):
            if bound is not None and bound.endswith("%") and abs(float(bound[:-1])) > 100:
                raise ValueError(f"Invalid split {split!r}: percent bound {bound} is beyond 100%.")
        if "[" in text and start is None and stop is None:
            raise ValueError(f"Invalid split {split!r}: a slice needs at least one bound.")
        parts.append(SplitPart(match["name"], start, stop))
    return parts
