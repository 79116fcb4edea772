"""Checks of the numbers our layers and models take: one formula, one place.

Every ``__init__`` of keras_vae runs its numeric arguments through these functions before it
creates any state, so a config read from a ``.keras`` file (``from_config`` passes the file's
values straight to ``__init__``) is refused in microseconds when a value is NaN, infinite, of
the wrong type or absurdly large, instead of allocating until the machine runs out of memory.
Each error is a ``ValueError`` that names the argument, says what was expected and shows what
was received.

The bounds below are generous for real use and documented in the layers' and models' Args.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

# Seeds: what Keras' SeedGenerator takes on every backend (torch keeps its state in int32).
SEED_LIMIT = 2**31
# Counts of classes and latent dimensions.
MAX_NUM_CLASSES = 1_000_000
MAX_LATENT_DIM = 65_536
# Channels of a convolution.
MAX_FILTERS = 65_536
# Pool sizes, kernel sizes, strides and dilation rates, per spatial axis.
MAX_WINDOW = 256
# Heights and widths given explicitly (MaxUnpooling2D's output_size).
MAX_SPATIAL_SIZE = 65_536
# Elements of one weight table or one example's feature map: 2**26 float32 values, 256 MiB.
MAX_ELEMENTS = 2**26
# Loss weights and noise scales (beta, free_bits, noise_stddev).
MAX_WEIGHT = 1e6


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _interval(minimum, maximum, closed_maximum=True) -> str:
    return f"[{minimum}, {maximum}{']' if closed_maximum else ')'}"


def check_int(name: str, value, minimum: int, maximum: int) -> int:
    """Returns ``value`` as an int if it is one (not a bool) in ``[minimum, maximum]``."""
    if not _is_int(value) or not minimum <= value <= maximum:
        raise ValueError(
            f"`{name}` must be an int in {_interval(minimum, maximum)}, received {value!r}"
        )
    return int(value)


def check_float(
    name: str, value, minimum: float, maximum: float, closed_maximum: bool = True
) -> float:
    """Returns ``value`` as a float if it is a finite number (not a bool) in range.

    The range is ``[minimum, maximum]``, or ``[minimum, maximum)`` when ``closed_maximum`` is
    False (a dropout rate).
    """
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    in_range = (
        number
        and (isinstance(value, numbers.Integral) or math.isfinite(value))  # big ints overflow
        and minimum <= value
        and (value <= maximum if closed_maximum else value < maximum)
    )
    if not in_range:
        raise ValueError(
            f"`{name}` must be a finite float in {_interval(minimum, maximum, closed_maximum)}, "
            f"received {value!r}"
        )
    return float(value)


def check_seed(name: str, value) -> int | None:
    """Returns ``None`` or ``value`` as an int in ``[0, 2**31)``."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"`{name}` must be None or an int in [0, 2**31), received {value!r}")
    return int(value)


def check_bool(name: str, value) -> bool:
    """Returns ``value`` as a bool if it is ``True`` or ``False`` (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False, received {value!r}")
    return bool(value)


def check_int_pair(name: str, value, minimum: int, maximum: int) -> tuple[int, int]:
    """Returns an int or a pair of ints, each in ``[minimum, maximum]``, as a pair."""
    pair = (value, value) if _is_int(value) else value
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(_is_int(v) and minimum <= v <= maximum for v in pair)
    ):
        raise ValueError(
            f"`{name}` must be an int or a pair of ints, each in "
            f"{_interval(minimum, maximum)}, received {value!r}"
        )
    return int(pair[0]), int(pair[1])


def check_elements(name: str, sizes, maximum: int = MAX_ELEMENTS) -> int:
    """Returns the product of ``sizes`` if it is at most ``maximum`` elements.

    ``name`` says what is counted, e.g. ``"num_classes * latent_dim"``.
    """
    count = math.prod(int(size) for size in sizes)
    if count > maximum:
        shown = " * ".join(str(int(size)) for size in sizes)
        raise ValueError(f"`{name}` must be at most {maximum}, received {shown} = {count}")
    return count
