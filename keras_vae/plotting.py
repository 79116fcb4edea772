"""Pictures of autoencoders: sample grids, reconstructions, latent spaces and loss curves.

matplotlib is an optional extra (``pip install "keras-vae[plot]"``) and is imported only when a
function here is called. Figures are built with the object-oriented ``matplotlib.figure.Figure``
API, never through ``pyplot``: nothing switches the user's backend, nothing needs a display
(headless servers and CI are fine) and no figure is left open in pyplot's global registry.
Every function returns the ``Figure`` (a notebook shows it inline) and, given ``path``, also
writes it as a PNG, creating the parent directories.

Images are arrays ``(N, H, W, C)`` with ``C`` 1 (grey) or 3/4 (RGB/RGBA), ``(N, H, W)``, or flat
``(N, D)`` with ``D`` a perfect square; float values are shown on a fixed ``[0, 1]`` scale
(clipped) and ``uint8`` images are divided by 255.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "class_conditional_grid",
    "latent_manifold",
    "latent_scatter",
    "loss_curves",
    "reconstruction_pairs",
    "sample_grid",
]

PathLike = str | os.PathLike

_PAD = 1  # pixels of white between tiled images
_MAX_WIDTH_IN = 12.0
_DEFAULT_HISTORY_KEYS = ("loss", "reconstruction_loss", "kl_loss")
_MAX_LEGEND_CLASSES = 20


# --------------------------------------------------------------------------- helpers


def _new_figure(figsize: tuple[float, float]) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "keras_vae.plotting needs matplotlib, an optional extra. Install it with "
            '`pip install "keras-vae[plot]"` (or `pip install matplotlib`).'
        ) from error
    return Figure(figsize=figsize, layout="constrained")


def _finish(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        save_png(fig, path)
    return fig


def save_png(fig: Figure, target: PathLike | Any) -> None:
    """Writes ``fig`` as PNG to a path or binary file object, cropped to its content."""
    # "tight" keeps labels that constrained layout lets spill over (horizontal row labels).
    fig.savefig(target, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)


def _to_numpy(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    try:
        return np.asarray(values)
    except (TypeError, ValueError, RuntimeError):
        # Backend tensors that numpy cannot read directly (e.g. torch tensors on a GPU).
        import keras

        return keras.ops.convert_to_numpy(values)


def _as_images(images: Any, name: str = "images") -> np.ndarray:
    """Returns float32 images ``(N, H, W)`` (grey) or ``(N, H, W, 3|4)`` in ``[0, 1]``."""
    array = _to_numpy(images)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one image; received shape {array.shape}.")
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize == 1:
        array = array.astype("float32") / 255.0
    else:
        array = array.astype("float32")
    if array.ndim == 2:
        side = math.isqrt(array.shape[1])
        if side * side != array.shape[1]:
            raise ValueError(
                f"`{name}` of shape {array.shape} are flat vectors of length {array.shape[1]}, "
                "which is not a perfect square; reshape them to (N, H, W, C) first."
            )
        array = array.reshape(array.shape[0], side, side)
    elif array.ndim == 4:
        channels = array.shape[-1]
        if channels == 1:
            array = array[..., 0]
        elif channels not in (3, 4):
            raise ValueError(
                f"`{name}` must have 1 (grey), 3 (RGB) or 4 (RGBA) channels; received shape "
                f"{array.shape} with {channels} channels."
            )
    elif array.ndim != 3:
        raise ValueError(
            f"`{name}` must have shape (N, H, W, C), (N, H, W) or (N, D) with D a perfect "
            f"square; received shape {array.shape}."
        )
    return np.clip(array, 0.0, 1.0)


def _tile(images: np.ndarray, ncols: int, pad_value: float = 1.0) -> np.ndarray:
    """Tiles ``(N, H, W[, C])`` images row by row into one ``(rows*(H+1)-1, ...)`` picture."""
    count, height, width = images.shape[:3]
    nrows = math.ceil(count / ncols)
    canvas_shape = (
        nrows * (height + _PAD) - _PAD,
        ncols * (width + _PAD) - _PAD,
        *images.shape[3:],
    )
    canvas = np.full(canvas_shape, pad_value, dtype="float32")
    for index, image in enumerate(images):
        row, col = divmod(index, ncols)
        top, left = row * (height + _PAD), col * (width + _PAD)
        canvas[top : top + height, left : left + width] = image
    return canvas


def _show(ax, picture: np.ndarray) -> None:
    if picture.ndim == 2:
        ax.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(picture, interpolation="nearest")


def _grid_figsize(picture: np.ndarray, ncols: int, extra_height: float = 0.6) -> tuple:
    width = min(_MAX_WIDTH_IN, max(3.0, 0.8 * ncols))
    height = width * picture.shape[0] / picture.shape[1] + extra_height
    return (width, height)


def _cell_centres(count: int, size: int) -> np.ndarray:
    return np.arange(count) * (size + _PAD) + (size - 1) / 2.0


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}.")
    return int(value)


# --------------------------------------------------------------------------- public API


def sample_grid(
    images: Any,
    ncols: int = 8,
    path: PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Shows a batch of images as one grid.

    Args:
        images: array ``(N, H, W, C)`` with ``C`` in {1, 3, 4}, ``(N, H, W)`` or ``(N, D)``
            with ``D`` a perfect square (MNIST vectors of length 784). Float values are
            shown on a fixed ``[0, 1]`` scale (grey colormap for one channel).
        ncols: images per row (fewer if there are fewer images).
        path: where to save the figure as PNG (parent directories are created), or `None`.
        title: figure title; defaults to ``"Samples (N images)"``.

    Returns:
        The matplotlib `Figure`, with one axes holding the tiled picture.

    Example:

    >>> import numpy as np
    >>> from keras_vae import plotting
    >>> images = np.random.default_rng(0).random((16, 28, 28, 1))
    >>> fig = plotting.sample_grid(images, ncols=4, title="Noise")
    >>> fig.axes[0].images[0].get_array().shape
    (115, 115)
    """
    pictures = _as_images(images)
    ncols = min(_check_positive_int(ncols, "ncols"), len(pictures))
    picture = _tile(pictures, ncols)
    fig = _new_figure(_grid_figsize(picture, ncols))
    ax = fig.add_subplot()
    _show(ax, picture)
    ax.set_axis_off()
    ax.set_title(title if title is not None else f"Samples ({len(pictures)} images)")
    return _finish(fig, path)


def reconstruction_pairs(
    inputs: Any,
    reconstructions: Any,
    noisy: Any | None = None,
    n: int = 8,
    path: PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Shows inputs above their reconstructions (and the corrupted inputs between, for a DAE).

    Args:
        inputs: images, see `sample_grid` for the accepted shapes.
        reconstructions: images of the same shape, ``model.reconstruct(inputs)``.
        noisy: optional corrupted inputs of the same shape (``dae.corrupt(inputs)``),
            shown as a middle row.
        n: number of examples (columns) to show, the first ``n``.
        path: where to save the figure as PNG, or `None`.
        title: figure title; defaults to ``"Reconstructions"``.

    Returns:
        The matplotlib `Figure`: one axes per row (2, or 3 with ``noisy``), each holding a
        strip of ``n`` images, labelled "Input", "Noisy input" and "Reconstruction".

    Example:

    >>> import numpy as np
    >>> from keras_vae import plotting
    >>> x = np.random.default_rng(0).random((8, 28, 28, 1))
    >>> fig = plotting.reconstruction_pairs(x, np.clip(x + 0.1, 0, 1), n=4)
    >>> len(fig.axes)
    2
    """
    n = _check_positive_int(n, "n")
    rows = [("Input", "inputs", _as_images(inputs, "inputs"))]
    if noisy is not None:
        rows.append(("Noisy input", "noisy", _as_images(noisy, "noisy")))
    rows.append(
        ("Reconstruction", "reconstructions", _as_images(reconstructions, "reconstructions"))
    )
    reference = rows[0][2]
    for _, name, images in rows[1:]:
        if len(images) != len(reference):
            raise ValueError(
                f"`{name}` has {len(images)} images but `inputs` has {len(reference)}; "
                "pass matching batches."
            )
        if images.shape[1:] != reference.shape[1:]:
            raise ValueError(
                f"`{name}` images have shape {images.shape[1:]} but `inputs` images have "
                f"shape {reference.shape[1:]}."
            )
    n = min(n, len(reference))
    strips = [(label, _tile(images[:n], n)) for label, _, images in rows]
    width = min(_MAX_WIDTH_IN, max(3.0, 1.0 * n + 1.5))
    strip_height = (width - 1.5) * strips[0][1].shape[0] / strips[0][1].shape[1]
    fig = _new_figure((width, len(strips) * strip_height + 0.6))
    axes = fig.subplots(len(strips), 1, squeeze=False)[:, 0]
    for ax, (label, strip) in zip(axes, strips):
        _show(ax, strip)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    fig.suptitle(title if title is not None else "Reconstructions")
    return _finish(fig, path)


def _pca(z: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Projects ``z`` (N, D) on its first principal components with an SVD.

    Returns ``(projection (N, n_components), explained_variance_ratio (n_components,))``.
    Signs are fixed so each component's largest loading is positive (deterministic output).
    """
    centred = z - z.mean(axis=0, keepdims=True)
    _, singular_values, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:n_components]
    signs = np.sign(components[np.arange(len(components)), np.argmax(np.abs(components), 1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    variance = singular_values**2
    total = variance.sum()
    ratio = variance[:n_components] / total if total > 0 else np.zeros(n_components)
    return centred @ components.T, ratio


def latent_scatter(
    z: Any,
    labels: Any | None = None,
    path: PathLike | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Scatter plot of latent codes, coloured by label.

    Two-dimensional codes are plotted as they are. Codes with more dimensions are projected on
    their first two principal components (PCA computed with an SVD of the centred codes); the
    title and axis labels then give the share of variance each component explains.

    Args:
        z: codes ``(N, D)`` with ``D >= 2`` (codes of any rank are flattened per example), or
            the ``(z_mean, z_log_var)`` tuple returned by ``VAE.encode`` (``z_mean`` is used).
        labels: optional ``(N,)`` labels (or ``(N, K)`` one-hot). Integer labels with at most
            20 distinct values get one colour each and a legend; other labels a colorbar.
        path: where to save the figure as PNG, or `None`.
        class_names: names for the integer labels (``class_names[label]``) in the legend.
        title: figure title; defaults to a description of the projection.

    Returns:
        The matplotlib `Figure` (one scatter axes, plus a colorbar axes for continuous labels).

    Example:

    >>> import numpy as np
    >>> from keras_vae import plotting
    >>> rng = np.random.default_rng(0)
    >>> fig = plotting.latent_scatter(rng.normal(size=(100, 8)), rng.integers(0, 3, 100))
    >>> fig.axes[0].get_title().startswith("Latent space (PCA")
    True
    """
    if isinstance(z, tuple) and len(z) == 2:
        z = z[0]  # (z_mean, z_log_var) from VAE.encode
    codes = _to_numpy(z).astype("float64")
    if codes.ndim < 2 or codes.shape[0] == 0:
        raise ValueError(f"`z` must have shape (N, D) with N >= 1; received shape {codes.shape}.")
    codes = codes.reshape(codes.shape[0], -1)
    dim = codes.shape[1]
    if dim < 2:
        raise ValueError(
            f"latent_scatter needs at least 2 latent dimensions; received codes of shape "
            f"{codes.shape}. Plot a histogram of one-dimensional codes instead."
        )
    if dim == 2:
        points = codes
        axis_labels = ("z[0]", "z[1]")
        default_title = "Latent space"
    else:
        if len(codes) < 2:
            raise ValueError(f"PCA needs at least 2 codes; received shape {codes.shape}.")
        points, ratio = _pca(codes, 2)
        axis_labels = (f"PC 1 ({ratio[0]:.1%} of variance)", f"PC 2 ({ratio[1]:.1%} of variance)")
        default_title = (
            f"Latent space (PCA of {dim}-D codes, {ratio.sum():.1%} of variance explained)"
        )

    fig = _new_figure((7.0, 5.5))
    ax = fig.add_subplot()
    size = 12.0 if len(points) <= 2000 else 4.0
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7, linewidths=0)
    else:
        label_values = _to_numpy(labels)
        if label_values.ndim == 2:
            label_values = label_values.argmax(axis=1)  # one-hot
        label_values = label_values.reshape(-1)
        if len(label_values) != len(points):
            raise ValueError(
                f"`labels` has {len(label_values)} entries but `z` has {len(points)} codes."
            )
        discrete = np.issubdtype(label_values.dtype, np.integer) or label_values.dtype == bool
        classes = np.unique(label_values)
        if class_names is not None:
            if not discrete:
                raise ValueError("`class_names` needs integer `labels`.")
            if classes.min() < 0 or classes.max() >= len(class_names):
                raise ValueError(
                    f"`class_names` has {len(class_names)} names but `labels` range from "
                    f"{classes.min()} to {classes.max()}."
                )
        if discrete and len(classes) <= _MAX_LEGEND_CLASSES:
            from matplotlib import colormaps

            cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
            for index, value in enumerate(classes):
                mask = label_values == value
                name = class_names[int(value)] if class_names is not None else str(value)
                ax.scatter(
                    points[mask, 0],
                    points[mask, 1],
                    s=size,
                    alpha=0.7,
                    linewidths=0,
                    color=cmap(index),
                    label=name,
                )
            ax.legend(title="label", markerscale=2.0, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            collection = ax.scatter(
                points[:, 0],
                points[:, 1],
                s=size,
                alpha=0.7,
                linewidths=0,
                c=label_values.astype("float64"),
                cmap="viridis",
            )
            fig.colorbar(collection, ax=ax, label="label")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title if title is not None else default_title)
    return _finish(fig, path)


def _decode_function(decoder: Any, label: int | None) -> Callable[[np.ndarray], Any]:
    """Returns ``z -> images`` for a keras_vae model, a Keras decoder or a plain function."""
    if hasattr(decoder, "decode"):
        latent_shape = getattr(decoder, "latent_shape", None)
        if latent_shape is not None and tuple(latent_shape) != (2,):
            raise ValueError(
                "latent_manifold needs a 2-D latent space; this model has latent_shape "
                f"{tuple(latent_shape)}. Use latent_scatter to look at its codes instead."
            )
        num_classes = getattr(decoder, "num_classes", None)
        # A CVAE whose decoder does not see the label decodes without one.
        if num_classes is None or (label is None and not getattr(decoder, "condition_decoder", 1)):
            return decoder.decode
        if label is None:
            raise ValueError(
                f"This conditional model has {num_classes} classes: pass `label=` to choose "
                "which class to decode the latent grid for."
            )
        if not 0 <= int(label) < int(num_classes):
            raise ValueError(f"`label` must be in [0, {num_classes}); received label={label}.")
        return lambda z: decoder.decode(z, np.full((len(z),), int(label), dtype="int32"))
    inputs = getattr(decoder, "inputs", None)
    if isinstance(inputs, list) and len(inputs) == 1:
        latent_dim = inputs[0].shape[-1]
        if len(inputs[0].shape) != 2 or latent_dim != 2:
            raise ValueError(
                "latent_manifold needs a decoder of 2-D codes; this decoder takes inputs of "
                f"shape {tuple(inputs[0].shape)}."
            )
    if not callable(decoder):
        raise TypeError(
            "`decode_fn_or_model` must be a keras_vae model (with `decode`), a Keras decoder "
            f"or a function mapping codes (N, 2) to images; received {type(decoder).__name__}."
        )
    return decoder


def latent_manifold(
    decode_fn_or_model: Any,
    n: int = 15,
    extent: float = 3.0,
    path: PathLike | None = None,
    *,
    spacing: str = "linear",
    label: int | None = None,
    title: str | None = None,
) -> Figure:
    """Decodes a regular ``n x n`` grid of 2-D latent codes and tiles the images.

    Column ``j`` has ``z[0] = grid[j]`` (left to right), row ``i`` has ``z[1]`` decreasing from
    top to bottom, so the picture reads like the ``latent_scatter`` plot of the same model.

    Args:
        decode_fn_or_model: a keras_vae model with a 2-D latent space (its ``decode`` is
            used), a Keras decoder model taking ``(N, 2)`` codes, or any function mapping a
            float32 array ``(N, 2)`` to images ``(N, ...)`` in ``[0, 1]``.
        n: grid points per axis (``n * n`` images).
        extent: the grid covers ``[-extent, extent]`` on both axes.
        path: where to save the figure as PNG, or `None`.
        spacing: ``"linear"`` for evenly spaced codes, or ``"quantile"`` for codes at evenly
            spaced quantiles of the standard normal prior (denser near 0, as in the original
            Keras VAE example), covering the same ``[-extent, extent]``.
        label: for a conditional model (CVAE) whose decoder takes the label, the class to
            decode every code with.
        title: axes title; defaults to a description of the grid.

    Returns:
        The matplotlib `Figure`, with one axes holding the tiled ``n x n`` picture and tick
        labels giving the code values.

    Example:

    >>> import numpy as np
    >>> from keras_vae import plotting
    >>> def decode(z):  # stand-in decoder: a blob whose position follows z
    ...     grid = np.linspace(-3, 3, 28)
    ...     rows = np.exp(-(grid[None, :] - z[:, 1:2]) ** 2)[:, ::-1, None]
    ...     cols = np.exp(-(grid[None, :] - z[:, 0:1]) ** 2)[:, None, :]
    ...     return rows * cols
    >>> fig = plotting.latent_manifold(decode, n=5)
    >>> fig.axes[0].images[0].get_array().shape
    (144, 144)
    """
    n = _check_positive_int(n, "n")
    if n < 2:
        raise ValueError(f"`n` must be at least 2; received n={n}.")
    if not extent > 0:
        raise ValueError(f"`extent` must be > 0; received extent={extent}.")
    if spacing == "linear":
        grid = np.linspace(-extent, extent, n)
    elif spacing == "quantile":
        normal = statistics.NormalDist()
        probabilities = np.linspace(normal.cdf(-extent), normal.cdf(extent), n)
        grid = np.array([normal.inv_cdf(float(p)) for p in probabilities])
    else:
        raise ValueError(f'`spacing` must be "linear" or "quantile"; received {spacing!r}.')
    decode = _decode_function(decode_fn_or_model, label)

    z1, z0 = np.meshgrid(grid[::-1], grid, indexing="ij")  # row i: z[1] = grid[n-1-i]
    codes = np.stack([z0.reshape(-1), z1.reshape(-1)], axis=1).astype("float32")
    images = _as_images(decode(codes), "decoded images")
    if len(images) != len(codes):
        raise ValueError(f"The decoder returned {len(images)} images for {len(codes)} codes.")
    picture = _tile(images, n)
    fig = _new_figure(_grid_figsize(picture, n, extra_height=1.0))
    ax = fig.add_subplot()
    _show(ax, picture)
    step = max(1, math.ceil(n / 7))
    shown = np.arange(0, n, step)
    height, width = images.shape[1:3]
    ax.set_xticks(_cell_centres(n, width)[shown], [f"{grid[j]:.2g}" for j in shown])
    ax.set_yticks(_cell_centres(n, height)[shown], [f"{grid[::-1][i]:.2g}" for i in shown])
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(
        title
        if title is not None
        else f"Decoded latent grid ({n}x{n}, {spacing} spacing in [-{extent:g}, {extent:g}])"
    )
    return _finish(fig, path)


def class_conditional_grid(
    model: Any,
    n_per_class: int = 8,
    seed: int | None = 0,
    path: PathLike | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Shows samples of a conditional model (CVAE), one row per class.

    Calls ``model.generate(labels, seed=seed)`` with ``labels`` each class index repeated
    ``n_per_class`` times.

    Args:
        model: a model with ``num_classes`` and ``generate(labels, seed=None)``.
        n_per_class: samples (columns) per class.
        seed: seed passed to ``generate``, for reproducible pictures.
        path: where to save the figure as PNG, or `None`.
        class_names: ``num_classes`` names for the row labels (default: the class indices).
        title: axes title; defaults to ``"Samples per class"``.

    Returns:
        The matplotlib `Figure`, with one axes holding a ``num_classes x n_per_class`` grid.

    Example:

    ```python
    cvae = keras_vae.CVAE(encoder, decoder, num_classes=10)
    cvae.compile(optimizer="adam")
    cvae.fit(x_train, y_train, epochs=10)
    plotting.class_conditional_grid(cvae, path="runs/cvae_classes.png")
    ```
    """
    n_per_class = _check_positive_int(n_per_class, "n_per_class")
    if not (getattr(model, "conditional", False) and getattr(model, "generative", False)):
        raise ValueError(
            "class_conditional_grid needs a conditional model that generates (a keras_vae "
            "model whose `conditional` and `generative` are True, such as a CVAE: "
            f"`generate(labels, seed=None)`); received {type(model).__name__}."
        )
    num_classes = model.num_classes
    num_classes = int(num_classes)
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` has {len(class_names)} names but the model has {num_classes} classes."
        )
    labels = np.repeat(np.arange(num_classes, dtype="int32"), n_per_class)
    images = _as_images(model.generate(labels, seed=seed), "generated images")
    if len(images) != len(labels):
        raise ValueError(f"`generate` returned {len(images)} images for {len(labels)} labels.")
    picture = _tile(images, n_per_class)
    fig = _new_figure(_grid_figsize(picture, n_per_class, extra_height=0.6))
    ax = fig.add_subplot()
    _show(ax, picture)
    names = class_names if class_names is not None else [str(c) for c in range(num_classes)]
    ax.set_yticks(_cell_centres(num_classes, images.shape[1]), list(names))
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel("class")
    ax.set_title(title if title is not None else "Samples per class")
    return _finish(fig, path)


def loss_curves(
    history: Any,
    path: PathLike | None = None,
    keys: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Plots training (and validation) curves per epoch, one axes per quantity.

    Args:
        history: the `keras.callbacks.History` returned by ``fit``, its ``.history`` dict, or
            any dict mapping names to per-epoch lists of numbers.
        path: where to save the figure as PNG, or `None`.
        keys: the quantities to plot; their ``val_`` counterparts are added when present.
            Defaults to those of ``loss``, ``reconstruction_loss`` and ``kl_loss`` that the
            history holds.
        title: figure title; defaults to ``"Training curves"``.

    Returns:
        The matplotlib `Figure`, with one axes per key (epochs 1..N on the x axis).

    Example:

    >>> from keras_vae import plotting
    >>> history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.1, 2.2, 1.7],
    ...            "kl_loss": [0.5, 0.8, 0.9]}
    >>> fig = plotting.loss_curves(history)
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'kl_loss']
    """
    if hasattr(history, "history"):
        history = history.history
    if not isinstance(history, Mapping):
        raise ValueError(
            "`history` must be a keras History or a dict of per-epoch lists; received "
            f"{type(history).__name__}."
        )
    if keys is None:
        keys = [key for key in _DEFAULT_HISTORY_KEYS if key in history or f"val_{key}" in history]
        if not keys:
            raise ValueError(
                f"`history` has none of {list(_DEFAULT_HISTORY_KEYS)}; pass `keys=` to choose "
                f"among {sorted(history)}."
            )
    else:
        keys = list(keys)
        missing = [key for key in keys if key not in history and f"val_{key}" not in history]
        if not keys or missing:
            raise ValueError(
                f"`keys` {missing or keys} not in `history`; available: {sorted(history)}."
            )
    series = {}
    for key in keys:
        for name in (key, f"val_{key}"):
            if name in history:
                series[name] = np.asarray(
                    [float(_to_numpy(value)) for value in history[name]], dtype="float64"
                )
    lengths = {name: len(values) for name, values in series.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"History lists have different lengths (epochs): {lengths}.")
    num_epochs = next(iter(lengths.values()))
    if num_epochs == 0:
        raise ValueError("`history` holds no epochs.")

    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, num_epochs + 1)
    fig = _new_figure((min(_MAX_WIDTH_IN, 4.0 * len(keys)), 3.6))
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        if key in series:
            ax.plot(epochs, series[key], marker="o", markersize=3, label="training")
        if f"val_{key}" in series:
            ax.plot(epochs, series[f"val_{key}"], marker="o", markersize=3, label="validation")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title if title is not None else "Training curves")
    return _finish(fig, path)
