"""The `keras-vae` command: train, evaluate, sample from, reconstruct with and export autoencoders.

```
keras-vae train --model vae --arch conv --latent-dim 16 --epochs 15 --out runs/vae
keras-vae evaluate runs/vae
keras-vae generate runs/vae --n 64 --out samples.png
keras-vae reconstruct runs/vae --n 16 --out reconstructions.png
keras-vae export runs/vae --out exported/vae
```

The command parses (`keras_vae.cli.parser`), calls `keras_vae.runs` and prints
(`keras_vae.cli.commands`). `--backend` sets `KERAS_BACKEND`; when Keras is already imported
with another backend, the command starts afresh in a new process. Errors print one line,
``keras-vae: error: ...``, and exit with status 2 for usage errors (bad flags, settings that do
not fit together or do not fit the run folder) and 1 for runtime errors; `--debug` shows the
traceback of unexpected errors.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence

from keras_vae import runs
from keras_vae.cli.commands import COMMANDS, warn
from keras_vae.cli.parser import PROG, build_parser

__all__ = ["build_parser", "main"]

_REEXEC_FLAG = "KERAS_VAE_CLI_REEXEC"


class _BackendMismatch(Exception):
    """Keras was imported before the command line could choose its backend."""

    def __init__(self, requested: str, current: str):
        super().__init__(
            f"--backend {requested} asked for, but Keras is already imported with backend "
            f"{current}; run keras-vae in a fresh process (or set KERAS_BACKEND={requested})."
        )
        self.requested = requested


def _select_backend(name: str | None) -> None:
    """Sets KERAS_BACKEND; fails if Keras is already running on another backend."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if name is None:
        return
    os.environ["KERAS_BACKEND"] = name
    keras = sys.modules.get("keras")
    if keras is not None:
        current = keras.backend.backend()
        if current != name:
            raise _BackendMismatch(name, current)


def _rerun_in_fresh_process(argv: Sequence[str], backend: str) -> int:
    env = dict(os.environ, KERAS_BACKEND=backend, **{_REEXEC_FLAG: "1"})
    command = [sys.executable, "-m", "keras_vae", *argv]
    if os.name == "posix":
        # Replace this process rather than wait for a child: a signal sent to the command
        # (SIGKILL by a scheduler) must stop the training, not leave it running orphaned.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)
    return subprocess.call(command, env=env)


@contextlib.contextmanager
def _run_warnings_as_lines() -> Iterator[None]:
    """Shows each `runs.RunWarning` as one ``keras-vae: warning: ...`` line on stderr."""
    with warnings.catch_warnings():  # restores showwarning and the filters afterwards
        warnings.simplefilter("always", runs.RunWarning)
        show = warnings.showwarning

        def show_warning(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, runs.RunWarning):
                warn(str(message))
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = show_warning
        yield


def _one_line(error: BaseException) -> str:
    from keras_vae.data import DatasetNotFoundError

    if isinstance(error, DatasetNotFoundError):
        looked = "; ".join(error.places) or "nowhere"
        remedies = "pass --idx-dir DIR with MNIST-format IDX files or set KERAS_VAE_DATA_DIR"
        if error.name == "fashion_mnist":
            remedies += ", or install the Debian package dataset-fashion-mnist"
        return (
            f"dataset {error.name!r} (split {error.split!r}) was not found (looked in: "
            f"{looked}); {remedies}"
        )
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `keras-vae` command line; returns the exit status.

    Args:
        argv: arguments without the program name; `None` reads `sys.argv`.

    Returns:
        0 on success, 1 for runtime errors, 2 for usage errors.

    Example:

    >>> main(["evaluate", "no/such/run"])  # prints the error line to stderr
    1
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    try:
        _select_backend(args.backend)
        with _run_warnings_as_lines():
            return COMMANDS[args.command](args)
    except _BackendMismatch as error:
        # Importing the package may import Keras before the flag is read: start afresh.
        if argv is None and not os.environ.get(_REEXEC_FLAG):
            return _rerun_in_fresh_process(arguments, error.requested)
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except runs.SettingsError as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; the same command resumes after the last epoch" if args.command == "train" else ""
        print(f"{PROG}: interrupted{hint}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        if args.debug:
            raise
        print(
            f"{PROG}: error: unexpected {type(error).__name__}: {_one_line(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
