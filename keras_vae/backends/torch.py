"""train_step/test_step for the PyTorch backend (mirrors keras' TorchTrainer), and SavedModel
export through a TensorFlow process."""

import json
import os
import subprocess
import sys
import tempfile

import keras
import torch

from keras_vae.backends import _shared
from keras_vae.backends._shared import (  # noqa: F401 (re-exported)
    nan_rows_for_bad_labels,
    one_step_per_execution,
    random_normal,
    random_uniform,
    zero_unless_finite,
)


class TrainStep(_shared.PhasedTraining):
    def train_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        results = []
        for phase in self._phases_for_batch(x):
            self.zero_grad()
            outputs, terms = phase.loss(x, y, sample_weight)
            loss = phase.optimizer.scale_loss(terms["loss"])
            loss.backward()
            variables = phase.variables[:]
            with torch.no_grad():
                gradients = zero_unless_finite(
                    terms["loss"], [variable.value.grad for variable in variables]
                )
                phase.optimizer.apply(gradients, variables)
            results.append((outputs, terms))
        outputs, terms = _shared.merge_phase_results(results)
        with torch.no_grad():
            return self.update_metrics(x, y, sample_weight, outputs, terms)

    def test_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        with torch.no_grad():
            outputs, terms = self.compute_total_loss(x, y, sample_weight, training=False)
            return self.update_metrics(x, y, sample_weight, outputs, terms)

    def compiles_optimizer_update(self):
        """False: the optimizer update runs as Keras' torch optimizers write it."""
        return False


def no_grad():
    return torch.no_grad()


def inference_function(fn):
    """``fn`` run without autograd's graph (torch runs eagerly; the products dominate)."""

    def run(*args):
        with torch.no_grad():
            return fn(*args)

    return run


def inference_rows():
    """Decoder rows per call of the likelihood estimators: half of `_shared.INFERENCE_ROWS` on
    a CPU, where eager torch passes over the logits once per operation and 4,096 rows of 784
    (13 MB) stay in the caches between passes (MLP 784-400-20, K=1000, 2 cores: 1,024 / 2,048 /
    4,096 / 8,192 rows give 131 / 134 / 137 / 100 GFLOP/s); all of it where Keras puts the
    tensors on CUDA (not measured here)."""
    return _shared.INFERENCE_ROWS // (1 if torch.cuda.is_available() else 2)


def bernoulli_log_prob_sum(x, logits):
    """`_shared.bernoulli_log_prob_sum` as eager torch runs it fastest: one softplus kernel and
    a batched product for ``sum_d x_d l_d`` (8,192 x 784 logits on 2 cores: 2.3x faster than
    the shared grouped form and 4.9x faster than `_shared.bernoulli_log_prob_elements`, op by
    op)."""
    x_dot_l = torch.matmul(logits, x.transpose(1, 2)).squeeze(-1)
    return x_dot_l - torch.nn.functional.softplus(logits).sum(-1)


def native_conv_transpose_is_slow():
    return False


# Keras' torch trainer refuses steps_per_execution > 1.
AUTO_STEPS_PER_EXECUTION = 1
auto_steps_per_execution = one_step_per_execution


# ------------------------------------------------------------------------ export
# Keras writes no SavedModel with named signatures from torch: `export_saved_model` has a
# TensorFlow process write it. These keep the interface of the other backends.
EXPORT_TRACKS_LAYERS = False

# Runs in the TensorFlow process: argv is sys.path, custom-object modules, the .keras file,
# the SavedModel folder, verbose ("1"/"0") and the export keyword arguments (JSON).
_EXPORT_SCRIPT = """
import importlib, json, sys
sys.path[:0] = json.loads(sys.argv[1])
for module in json.loads(sys.argv[2]):
    try:
        importlib.import_module(module)
    except ImportError:
        pass  # loading then names the class it cannot find
import keras
from keras_vae.export import export_model
model = keras.saving.load_model(sys.argv[3], compile=False, safe_mode=False)
export_model(model, sys.argv[4], verbose=sys.argv[5] == "1", **json.loads(sys.argv[6]))
"""


def export_saved_model(model, filepath, write, verbose=True, **kwargs):
    """Writes ``model``'s SavedModel from a fresh Python process with KERAS_BACKEND=tensorflow.

    Keras' torch exporter writes only a model's own ``call``, without named signatures;
    TensorFlow is a keras_vae dependency and ``.keras`` files load across backends. So the
    model is saved to a temporary ``.keras`` file, and a TensorFlow process loads it and runs
    `keras_vae.export.export_model` (``write`` there): the same signatures and numbers as an
    export from TensorFlow. It imports the modules of the registered custom objects the model
    uses (a class defined in ``__main__`` cannot be found there), sees no GPU, and costs a
    TensorFlow start-up: 6-8 s for a small MLP VAE on 2 CPU cores, against 0.2-0.3 s on
    TensorFlow.
    """
    try:
        arguments = json.dumps(kwargs)
    except TypeError as error:
        raise TypeError(
            "From the torch backend the export keyword arguments go to a TensorFlow process "
            f"and must be JSON values; received {sorted(kwargs)}: {error}"
        ) from None
    config = model.to_json()
    modules = sorted(
        {
            getattr(obj, "__module__", None) or "__main__"
            for name, obj in keras.saving.get_custom_objects().items()
            if f'"{name}"' in config
        }
        - {"__main__"}
    )
    with tempfile.TemporaryDirectory() as folder:  # private to this user (mode 0700)
        saved = os.path.join(folder, "model.keras")
        model.save(saved)
        # safe_mode=False: the file is the one this process has just written (Lambda layers).
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _EXPORT_SCRIPT,
                json.dumps([path for path in sys.path if path]),
                json.dumps(modules),
                saved,
                os.path.abspath(filepath),
                "1" if verbose else "0",
                arguments,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
    if result.returncode != 0:
        raise RuntimeError(
            "SavedModel export from the torch backend runs in a Python process with "
            f"KERAS_BACKEND=tensorflow, which failed (exit status {result.returncode}). Custom "
            "layers must be registered (@keras.saving.register_keras_serializable) in an "
            "importable module, not in __main__. Its error output ends:\n" + result.stderr[-3000:]
        )
    if verbose:
        print(result.stdout, end="")


def serving_input_checks(fn, input_signature):
    return fn


checked_labels = nan_rows_for_bad_labels


datasets_must_keep_their_batch_size = _shared.datasets_never_sharded_by_batch_size
