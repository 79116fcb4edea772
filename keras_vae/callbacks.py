"""Training callbacks: KL warm-up (beta annealing), a sample-grid writer, and the two that make
a run resumable: `DataEpoch` (epoch-keyed data order) and an atomic `BackupAndRestore`.

All work on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
import warnings
from typing import Any

import keras
import numpy as np

from keras_vae import _keras_compat, plotting

__all__ = ["BackupAndRestore", "DataEpoch", "KLWarmup", "SampleGrid", "find_kl_weights"]


def find_kl_weights(model: keras.Model) -> list[keras.Variable]:
    """Returns the KL-weight variables a `KLWarmup` would anneal in ``model``.

    ``model.kl_weight`` when the model has one (keras_vae's VAE and CVAE); otherwise the
    ``kl_weight`` variable of every layer that has one, searched recursively (for example
    `keras_vae.layers.KLDivergenceRegularizer` inside a functional model).

    Args:
        model: a Keras model.

    Returns:
        A list of scalar `keras.Variable`s, possibly empty.
    """
    own = getattr(model, "kl_weight", None)
    if isinstance(own, keras.Variable):
        return [own]
    found: dict[int, keras.Variable] = {}
    for layer in _keras_compat.sublayers(model):
        variable = getattr(layer, "kl_weight", None)
        if isinstance(variable, keras.Variable):
            found.setdefault(id(variable), variable)
    return list(found.values())


def _write_image_summary(writer, tag: str, png: bytes, step: int) -> None:
    """Writes a PNG as a TensorBoard image summary, as `tf.summary.image` would.

    `tf.summary.image` lives in the `tensorboard` package, which TensorFlow no longer installs;
    the event format (a ``[width, height, png]`` string tensor tagged for the "images" plugin)
    only needs TensorFlow's core `tf.summary.write`.
    """
    import tensorflow as tf

    width, height = struct.unpack(">II", png[16:24])  # from the PNG's IHDR chunk
    metadata = tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="images")
    )
    with writer.as_default():
        tf.summary.write(
            tag, tf.constant([str(width), str(height), png]), step=step, metadata=metadata
        )
    writer.flush()


class KLWarmup(keras.callbacks.Callback):
    """Anneals the KL weight (beta) linearly from ``start`` to ``end`` during the first epochs.

    Starting a VAE with a small KL weight lets the decoder learn to use the code before the KL
    term pulls the posterior onto the prior (Bowman et al. 2016; Sønderby et al. 2016), which
    helps against posterior collapse. The weight at global training step ``s`` (counted from
    epoch 0, so ``initial_epoch`` resumes the schedule) is
    ``start + (end - start) * min(1, s / (warmup_epochs * steps_per_epoch))``: the first batch
    trains with ``start`` and every batch from epoch ``warmup_epochs`` on with ``end``.
    With ``per_batch=False`` (or when ``fit`` cannot know the steps per epoch) the weight
    changes once per epoch: epoch ``e`` trains with
    ``start + (end - start) * min(1, e / warmup_epochs)``.

    The callback assigns to the KL-weight variables, so no recompilation is needed:
    ``model.kl_weight`` of keras_vae's `VAE` and `CVAE`, or, when the model has none, the
    ``kl_weight`` variable of every layer that has one (such as
    `keras_vae.layers.KLDivergenceRegularizer` inside your own functional model). The value
    used in the epoch's last batch is logged as ``logs["kl_weight"]``, so it shows in the
    progress bar and in ``History``.

    Args:
        warmup_epochs: number of epochs to go from ``start`` to ``end``; ``0`` sets ``end``
            at once.
        start: the weight at the first step.
        end: the weight after warm-up. Defaults to the value each variable holds when
            training first begins (the ``kl_weight``/``weight`` the model was built with).
        per_batch: update the weight before every batch (smooth) rather than every epoch.
            Such a callback needs every batch, so under the models' default
            ``compile(steps_per_execution="auto")`` it keeps ``fit`` at one batch per
            compiled call; ``per_batch=False`` leaves it free.

    With `BackupAndRestore`, pass ``end`` or put this callback before it in the list: the
    backup restores the half-annealed weight in ``on_train_begin``, and ``end=None`` takes the
    value it finds there for its target. The schedule itself depends only on the epoch and
    batch, so a resumed run anneals as an uninterrupted one.

    Example:

    ```python
    vae = keras_vae.VAE(encoder, decoder)  # kl_weight 1.0
    vae.compile(optimizer="adam")
    history = vae.fit(x_train, epochs=30, callbacks=[KLWarmup(warmup_epochs=10)])
    history.history["kl_weight"]  # 0.0 ... rising to 1.0 by epoch 11
    ```
    """

    def __init__(
        self,
        warmup_epochs: int = 10,
        start: float = 0.0,
        end: float | None = None,
        per_batch: bool = True,
    ):
        super().__init__()
        if isinstance(warmup_epochs, bool) or int(warmup_epochs) != warmup_epochs:
            raise ValueError(
                f"`warmup_epochs` must be an integer >= 0; received {warmup_epochs!r}."
            )
        if warmup_epochs < 0:
            raise ValueError(f"`warmup_epochs` must be >= 0; received {warmup_epochs}.")
        if start < 0 or (end is not None and end < 0):
            raise ValueError(f"KL weights must be >= 0; received start={start}, end={end}.")
        self.warmup_epochs = int(warmup_epochs)
        self.start = float(start)
        self.end = None if end is None else float(end)
        self.per_batch = bool(per_batch)
        self._variables: list[keras.Variable] = []
        self._ends: dict[int, float] = {}
        self._steps_per_epoch: int | None = None
        self._epoch = 0
        self._current: float | None = None

    @property
    def needs_every_batch(self) -> bool:
        """Per-batch annealing must see every batch: under
        ``compile(steps_per_execution="auto")`` it keeps ``fit`` at one batch per call."""
        return self.per_batch

    def _progress(self, epoch: int, batch: int = 0) -> float:
        """The fraction of the way from ``start`` to ``end`` at ``(epoch, batch)``, in [0, 1]."""
        if self.warmup_epochs == 0:
            return 1.0
        if self._steps_per_epoch:
            step = epoch * self._steps_per_epoch + batch
            return min(1.0, step / (self.warmup_epochs * self._steps_per_epoch))
        return min(1.0, epoch / self.warmup_epochs)

    def on_train_begin(self, logs=None):
        self._variables = find_kl_weights(self.model)
        if not self._variables:
            raise ValueError(
                "KLWarmup found no KL weight to anneal: the model has no `kl_weight` "
                "variable and none of its layers has one. Use a keras_vae VAE/CVAE or add a "
                "keras_vae.layers.KLDivergenceRegularizer to the model."
            )
        for variable in self._variables:
            # Read once per variable: a second fit() must not take a half-annealed value as
            # its target.
            if id(variable) not in self._ends:
                value = float(keras.ops.convert_to_numpy(variable.value))
                self._ends[id(variable)] = self.end if self.end is not None else value
        steps = (self.params or {}).get("steps")
        self._steps_per_epoch = None
        if self.per_batch:
            if steps:
                self._steps_per_epoch = int(steps)
            else:
                warnings.warn(
                    "KLWarmup(per_batch=True) could not read the number of steps per epoch "
                    "from fit(); annealing once per epoch instead. Pass `steps_per_epoch` to "
                    "fit() for per-batch annealing.",
                    stacklevel=2,
                )
        self._current = None

    def _assign(self, fraction: float) -> None:
        if fraction == self._current:
            return  # nothing changes; on JAX this also spares a state sync per batch
        # On JAX, reading `self.model` syncs the trainer's state back into the variables and
        # makes the next step re-read them, so the assignment below reaches the train step.
        _ = self.model
        for variable in self._variables:
            end = self._ends[id(variable)]
            variable.assign(np.float32(self.start + (end - self.start) * fraction))
        self._current = fraction

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._assign(self._progress(epoch, 0))

    def on_train_batch_begin(self, batch, logs=None):
        if self._steps_per_epoch:
            self._assign(self._progress(self._epoch, batch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._variables:
            logs["kl_weight"] = float(keras.ops.convert_to_numpy(self._variables[0].value))


class SampleGrid(keras.callbacks.Callback):
    """Writes a grid of generated (or reconstructed) images every few epochs.

    What the grid shows depends on the arguments and the model:

    - ``x`` given: reconstructions of that fixed batch, ``model.reconstruct(x)`` (or
      ``model.reconstruct(x, labels)`` when ``labels`` is given too); the choice for AE and
      DAE, which cannot generate.
    - a conditional model (with ``num_classes``): ``model.generate(labels, seed=seed)``, with
      ``labels`` defaulting to each class repeated ``n // num_classes`` times (one row per
      class).
    - otherwise: ``model.generate(n, seed=seed)``.

    The same seed every time shows how the same codes evolve during training. Files are
    ``{directory}/samples_epoch_{epoch:03d}.png`` with 1-based epochs, as Keras' progress bar
    counts. With ``tensorboard_dir``, the same picture is also logged as the image summary
    ``"samples"`` at the 0-based step ``epoch``, as Keras' `TensorBoard` callback counts
    (through TensorFlow's summary writer, which works on every backend and does not need the
    `tensorboard` package; viewing the logs does).

    Args:
        directory: folder for the PNG files (created if needed).
        every: write after every ``every``-th epoch (and never otherwise).
        n: number of samples for ``model.generate(n)``, or the total for the default CVAE
            labels.
        seed: seed passed to ``generate``.
        labels: integer labels for a conditional model.
        x: a fixed batch of inputs to reconstruct instead of generating.
        tensorboard_dir: log directory for a TensorBoard image summary, or `None`.
        ncols: images per row; defaults to one row per class for conditional models and about
            ``sqrt(n)`` otherwise.

    Example:

    ```python
    vae.fit(
        x_train,
        epochs=20,
        callbacks=[SampleGrid("runs/vae/samples", every=5, tensorboard_dir="runs/vae/tb")],
    )
    # runs/vae/samples/samples_epoch_005.png, ..._010.png, ..._015.png, ..._020.png
    ```
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        every: int = 1,
        n: int = 64,
        seed: int | None = 0,
        labels: Any | None = None,
        tensorboard_dir: str | os.PathLike | None = None,
        x: Any | None = None,
        ncols: int | None = None,
    ):
        super().__init__()
        for name, value in (("every", every), ("n", n)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
        if ncols is not None and (int(ncols) != ncols or ncols < 1):
            raise ValueError(f"`ncols` must be a positive integer; received {ncols!r}.")
        self.directory = os.fspath(directory)
        self.every = int(every)
        self.n = int(n)
        self.seed = seed
        self.labels = None if labels is None else np.asarray(labels).astype("int32")
        self.x = x
        self.tensorboard_dir = None if tensorboard_dir is None else os.fspath(tensorboard_dir)
        self.ncols = ncols
        if self.x is not None and self.labels is not None and len(self.labels) != len(self.x):
            raise ValueError(
                f"`labels` has {len(self.labels)} entries but `x` has {len(self.x)} examples."
            )
        self._writer = None

    def on_train_begin(self, logs=None):
        model = self.model
        if self.x is None and not getattr(model, "generative", False):
            raise ValueError(
                f"SampleGrid: {type(model).__name__} has no `generate`; pass a fixed batch "
                "`x=` to show its reconstructions instead."
            )
        if self.x is not None and not callable(getattr(model, "reconstruct", None)):
            raise ValueError(f"SampleGrid: {type(model).__name__} has no `reconstruct`.")
        if self.x is not None and self.labels is None and getattr(model, "conditional", False):
            raise ValueError(
                "SampleGrid: a conditional model reconstructs `x` with its labels; pass "
                "`labels=` along with `x=`."
            )
        os.makedirs(self.directory, exist_ok=True)
        if self.tensorboard_dir is not None and self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.tensorboard_dir)

    def _images_and_columns(self, model) -> tuple[np.ndarray, int, str]:
        if self.x is not None:
            if self.labels is not None:
                images = model.reconstruct(self.x, self.labels)
            else:
                images = model.reconstruct(self.x)
            count = len(self.x)
            return images, self.ncols or math.ceil(math.sqrt(count)), "Reconstructions"
        num_classes = model.num_classes if model.conditional else None
        if num_classes is not None:
            labels = self.labels
            ncols = self.ncols
            if labels is None:
                per_class = max(1, self.n // int(num_classes))
                labels = np.repeat(np.arange(int(num_classes), dtype="int32"), per_class)
                ncols = ncols or per_class
            images = model.generate(labels, seed=self.seed)
            return images, ncols or math.ceil(math.sqrt(len(labels))), "Samples"
        images = model.generate(self.n, seed=self.seed)
        return images, self.ncols or math.ceil(math.sqrt(self.n)), "Samples"

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        images, ncols, kind = self._images_and_columns(self.model)
        path = os.path.join(self.directory, f"samples_epoch_{epoch + 1:03d}.png")
        fig = plotting.sample_grid(
            images, ncols=ncols, path=path, title=f"{kind}, epoch {epoch + 1}"
        )
        if self._writer is not None:
            buffer = io.BytesIO()
            plotting.save_png(fig, buffer)
            _write_image_summary(self._writer, "samples", buffer.getvalue(), step=epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


class DataEpoch(keras.callbacks.Callback):
    """Holds the epoch ``fit`` is in, for `keras_vae.data.load(..., epoch=...)`.

    A `tf.data` shuffle orders each pass by how many passes its process has made, so a run
    resumed at epoch ``e`` in a fresh process would see epoch 0's order again.
    ``data.load(..., seed=s, epoch=DataEpoch().variable)`` draws each pass from ``(s, epoch)``
    instead, and this callback sets the variable at the start of every epoch, before ``fit``
    makes that epoch's iterator. It has no batch hooks, so it leaves
    ``steps_per_execution="auto"`` free.

    Attributes:
        variable: a scalar int64 `tf.Variable` (on every backend: the pipeline is `tf.data`).

    Example:

    ```python
    data_epoch = DataEpoch()
    train = data.load("fashion_mnist", "train", seed=0, epoch=data_epoch.variable)
    vae.fit(train, epochs=20, callbacks=[data_epoch, BackupAndRestore("runs/vae/backup")])
    ```
    """

    def __init__(self):
        super().__init__()
        import tensorflow as tf

        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


def _seed_states(model: keras.Model) -> list[keras.Variable]:
    """The variables ``save_weights`` leaves out: ``model.variables`` minus ``model.weights``,
    which Keras documents as the random seed generators' states."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def _fsync(path: str) -> None:
    """Flushes a file (or a directory's entries) to disk, where the system can."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # a directory on Windows
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that survives a kill at any moment and resumes exactly.

    At the end of every epoch it backs up what an uninterrupted run would carry into the next
    one: the weights with the optimizer state (``save_weights``), the states of the model's
    random seed generators, which ``save_weights`` leaves out (without them a resumed VAE
    would draw epoch 0's sampling noise again), and the logs of every epoch so far. When
    ``fit`` starts and a backup exists, it restores them and ``fit`` goes on with the next
    epoch, as with Keras' callback.

    Every write is atomic: the weights go to a temporary file renamed to
    ``epoch_NNNN.weights.h5``, then ``state.json`` (epoch, weights file name, seed states,
    history) is written the same way and renamed over the previous one, the commit; the older
    weights file is deleted after it. A kill at any point leaves a ``state.json`` that names a
    complete weights file. (Keras' callback overwrites ``latest.weights.h5`` in place and then
    its metadata, so a kill in the first write leaves a broken file and one between the two
    pairs an epoch's weights with the previous epoch's number.) Temporary files a kill left
    behind are deleted at the next start.

    For a resumed run to end as an uninterrupted one, its data must be too: load them with
    `keras_vae.data.load(..., seed=..., epoch=DataEpoch().variable)` and pass the
    `DataEpoch`. Put callbacks that add to the logs (`KLWarmup`) or write a file per epoch
    (`keras.callbacks.CSVLogger`) before this one, so their values are in the backed-up history
    and their writes come before the commit. It saves once per epoch and has no batch work, so
    ``steps_per_execution="auto"`` keeps several batches per call.

    Args:
        backup_dir: folder for the backup (created), used by nothing else.
        delete_checkpoint: delete the backup when ``fit`` completes, as Keras does; with
            `False` it stays (and a later ``fit`` with more epochs goes on from it).

    Attributes:
        history: the logs of every epoch of the run, the restored ones included (``fit``'s
            `History` holds only this process's epochs), as lists of floats.

    Example:

    ```python
    backup = BackupAndRestore("runs/vae/backup")
    vae.fit(train, epochs=20, callbacks=[data_epoch, backup])  # killed in epoch 7
    vae.fit(train, epochs=20, callbacks=[data_epoch, backup])  # new process: epochs 7-20
    backup.history["loss"]  # 20 values
    ```
    """

    STATE_FILE = "state.json"
    _TEMPORARY_PREFIX = ".tmp-"

    def __init__(self, backup_dir: str | os.PathLike, delete_checkpoint: bool = True):
        super().__init__(
            os.fspath(backup_dir), save_freq="epoch", delete_checkpoint=delete_checkpoint
        )
        self.history: dict[str, list[float]] = {}
        self._state_path = os.path.join(self.backup_dir, self.STATE_FILE)

    def read_state(self) -> dict[str, Any] | None:
        """The last committed backup (``epoch``, ``weights``, ``seed_states``, ``history``),
        or `None` when there is none."""
        try:
            with open(self._state_path) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

    @property
    def completed_epochs(self) -> int:
        """Epochs the backup holds: the epoch ``fit`` will resume at (0 without a backup)."""
        state = self.read_state()
        return 0 if state is None else int(state["epoch"])

    def on_train_begin(self, logs=None):
        self._remove_temporary_files()
        self.history = {}
        state = self.read_state()
        if state is None:
            return
        model = self.model
        if not model.built:
            raise ValueError(
                f"BackupAndRestore: {type(model).__name__} must be built before fit() to be "
                "restored; call it on a batch first."
            )
        weights_path = os.path.join(self.backup_dir, state["weights"])
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"The backup {self._state_path} names {state['weights']}, which is missing."
            )
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so its state can be loaded
        model.load_weights(weights_path)
        seed_states = _seed_states(model)
        saved = state["seed_states"]
        if len(saved) != len(seed_states):  # by order: auto-named paths vary between processes
            raise ValueError(
                f"The backup in {self.backup_dir} holds {len(saved)} seed generator states, "
                f"the model has {len(seed_states)}: another model wrote it."
            )
        for variable, entry in zip(seed_states, saved):
            variable.assign(np.asarray(entry["value"], dtype=variable.dtype))
        self.history = {key: list(values) for key, values in state["history"].items()}
        # How Keras' own callback resumes: fit reads it after on_train_begin.
        _keras_compat.set_initial_epoch(model, int(state["epoch"]))

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            try:
                self.history.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue  # not a number: History keeps it, the backup cannot
        self._save(epoch + 1)

    def _save(self, epochs_done: int) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        model = self.model
        weights_name = f"epoch_{epochs_done:04d}.weights.h5"
        temporary = self._temporary_path(".weights.h5")  # save_weights wants that suffix
        model.save_weights(temporary, overwrite=True)
        self._commit(temporary, weights_name)
        state = {
            "epoch": epochs_done,
            "weights": weights_name,
            "seed_states": [
                {"path": variable.path, "value": keras.ops.convert_to_numpy(variable).tolist()}
                for variable in _seed_states(model)
            ],
            "history": self.history,
        }
        temporary = self._temporary_path(".json")
        with open(temporary, "w") as handle:
            json.dump(state, handle)
        self._commit(temporary, self.STATE_FILE)
        for name in os.listdir(self.backup_dir):
            if name.startswith("epoch_") and name.endswith(".weights.h5") and name != weights_name:
                os.remove(os.path.join(self.backup_dir, name))

    def _temporary_path(self, suffix: str) -> str:
        descriptor, path = tempfile.mkstemp(
            prefix=self._TEMPORARY_PREFIX, suffix=suffix, dir=self.backup_dir
        )
        os.close(descriptor)
        return path

    def _commit(self, temporary: str, name: str) -> None:
        """Renames a written file into place: on disk first, then atomically."""
        _fsync(temporary)
        os.replace(temporary, os.path.join(self.backup_dir, name))
        _fsync(self.backup_dir)

    def _remove_temporary_files(self) -> None:
        if not os.path.isdir(self.backup_dir):
            return
        for name in os.listdir(self.backup_dir):
            if name.startswith(self._TEMPORARY_PREFIX):
                os.remove(os.path.join(self.backup_dir, name))

    def on_train_end(self, logs=None):
        # Keras never resets it: a later fit would skip epochs.
        _keras_compat.set_initial_epoch(self.model, None)
        if not self.delete_checkpoint or not os.path.isdir(self.backup_dir):
            return
        if os.path.exists(self._state_path):
            os.remove(self._state_path)  # first: no state may name a deleted file
        self._remove_temporary_files()
        for name in os.listdir(self.backup_dir):
            if name.startswith("epoch_") and name.endswith(".weights.h5"):
                os.remove(os.path.join(self.backup_dir, name))
        if not os.listdir(self.backup_dir):
            os.rmdir(self.backup_dir)
