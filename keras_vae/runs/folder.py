"""The run folder: its file names, `Run`, `load`, and the checks and repairs of `train`'s
resume (an unfinished run, the rows of history.csv a kill left behind)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import keras

from keras_vae.models import BaseAutoencoder
from keras_vae.runs.settings import DEFAULT_DATASET, _check, _differing_settings

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
METRICS_FILE = "metrics.json"
BACKUP_DIR = "backup"  # exists while a run is unfinished: a rerun resumes from it
# What overwrite=True removes before a new run: everything train writes that a new run might
# not write again (pictures and config.json are always rewritten).
_RUN_OUTPUTS = (BACKUP_DIR, "progress", "saved_model", MODEL_FILE, METRICS_FILE)
_RUN_LOGS = (HISTORY_CSV, HISTORY_JSON)


@dataclasses.dataclass
class Run:
    """A trained run: its folder, its model and what its JSON files hold.

    Attributes:
        path: the run folder.
        model_file: the ``.keras`` file.
        model: the trained model.
        settings: the contents of ``config.json`` (empty for a ``.keras`` file without one).
        history: ``history.json``, lists of per-epoch values by name, or `None`.
        metrics: ``metrics.json``, or `None`.
    """

    path: Path
    model_file: Path
    model: BaseAutoencoder
    settings: dict[str, Any]
    history: dict[str, list[float]] | None = None
    metrics: dict[str, Any] | None = None

    @property
    def dataset(self) -> str:
        """The dataset the run trained on (`DEFAULT_DATASET` when config.json does not say)."""
        return self.settings.get("dataset") or DEFAULT_DATASET


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _prepare_folder(out: Path, settings: dict[str, Any], resume: bool, overwrite: bool) -> bool:
    """Checks ``out`` against ``resume`` and ``overwrite``; returns whether to resume there.

    A run is unfinished while ``backup/`` exists beside its config.json, and completed when
    model.keras exists without a ``backup/``.
    """
    _check(not (resume and overwrite), "--resume and --overwrite exclude each other")
    unfinished = (out / BACKUP_DIR).is_dir() and (out / CONFIG_FILE).is_file()
    if overwrite:
        for name in _RUN_OUTPUTS + _RUN_LOGS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        return False
    if unfinished:
        differing = _differing_settings(json.loads((out / CONFIG_FILE).read_text()), settings)
        _check(
            not differing,
            f"{out} holds an unfinished run started with other settings: "
            + "; ".join(differing)
            + ". Resume it with its own settings, or pass --overwrite to start afresh",
        )
        return True
    _check(
        not (out / MODEL_FILE).is_file(),
        f"{out} holds a completed run; pass --overwrite to train it again, or choose another --out",
    )
    _check(
        not resume,
        f"--resume: {out} holds no unfinished run (no {BACKUP_DIR}/ beside a {CONFIG_FILE})",
    )
    return False


def _keep_csv_rows(path: Path, epochs: int) -> None:
    """Keeps the header and the complete rows of the first ``epochs`` epochs of a CSVLogger file.

    A kill between an epoch's row and the backup's commit leaves a row that the resumed run
    writes again.
    """
    if not path.is_file():
        return

    def epoch_of(row: str) -> int:  # a row cut short by a kill counts as a later epoch
        first = row.split(",", 1)[0]
        return int(first) if row.endswith("\n") and first.isdigit() else epochs

    header, *rows = path.read_text().splitlines(keepends=True) or [""]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(header + "".join(row for row in rows if epoch_of(row) < epochs))
    os.replace(temporary, path)


def _locate(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(model file, config.json path)`` for a run folder or a ``.keras`` file."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"run folder {str(path)!r} has no {MODEL_FILE}")
        return path / MODEL_FILE, path / CONFIG_FILE
    if path.is_file():
        _check(
            path.suffix == ".keras", f"expected a run folder or a .keras file, got {str(path)!r}"
        )
        return path, path.parent / CONFIG_FILE
    raise FileNotFoundError(f"no run folder or .keras file at {str(path)!r}")


def load(path: str | os.PathLike) -> Run:
    """Loads a run folder (or a ``.keras`` file, with the config.json beside it if any).

    Args:
        path: a run folder written by `train`, or a ``.keras`` file.

    Returns:
        A `Run`: ``run.model`` is the trained model, ``run.settings`` its config.json.

    Raises:
        FileNotFoundError: nothing at ``path``, or a folder without model.keras.
        SettingsError: a file that is not a ``.keras`` file.
    """
    model_file, config_file = _locate(path)
    folder = model_file.parent
    model = keras.saving.load_model(model_file)  # safe_mode=True: no code from the file runs
    return Run(
        path=folder,
        model_file=model_file,
        model=model,
        settings=_read_json(config_file) or {},
        history=_read_json(folder / HISTORY_JSON),
        metrics=_read_json(folder / METRICS_FILE),
    )


def _as_run(run: Run | str | os.PathLike) -> Run:
    return run if isinstance(run, Run) else load(run)
