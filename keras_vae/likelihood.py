"""How well a latent-variable model explains data: importance-weighted log p(x) and the ELBO.

For a model with a diagonal Gaussian posterior ``q(z | x) = N(mu(x), exp(log_var(x)))``, a
prior ``p(z)`` (N(0, I), or a per-example diagonal Gaussian such as a CVAE's class prior) and a
normalised likelihood ``p(x | z)``, `log_likelihood` is the estimate of Burda et al. (2015):

``log p(x) ~= logsumexp_k(log p(x | z_k) + log p(z_k) - log q(z_k | x)) - log K``,
``z_k ~ q(z | x)``,

a lower bound of ``log p(x)`` in expectation that tightens as ``K`` grows (``K = 1`` is the
ELBO's Monte-Carlo estimate; Burda et al. report test NLL with ``K = 5000``). `elbo` is the
evidence lower bound with the closed-form KL, ``E_q[log p(x | z)] - KL(q(z | x) || p(z))``.

Both work on any networks, not only keras_vae models: ``encode(x_batch, *conditions)``
returns ``(z_mean, z_log_var)`` and ``decode(z, *conditions)`` the decoder's outputs, as
tensors of the current Keras backend (a `keras.Model`, or a torch module under the torch
backend). The models' own ``log_likelihood`` / ``elbo`` methods call these functions.

Computation: examples are taken ``batch_size`` at a time and each batch's ``K`` samples
``sample_chunk`` at a time, so at most ``batch_size * sample_chunk`` decoder rows exist at once,
whatever ``K`` is: by default at most `default_rows` rows (8,192; 4,096 with torch on a CPU) and
at most `MEMORY_ELEMENTS` (2**26, 256 MB of float32) values of the decoder's activations,
counted from its layers' output shapes (`rows_for`). The peak is then about that plus three
arrays of the rows' data (25 MB each for 8,192 rows of 784 pixels). Each chunk's float32
log-weights, ``batch_size * sample_chunk`` numbers, come out of one compiled function
(`keras_vae.backends.inference_function`; the Bernoulli log p(x | z) there is the backend's
`keras_vae.backends.bernoulli_log_prob_sum` kernel), and the log-sum-exp over all ``K`` of them
is taken in float64. The noise is drawn by numpy from ``seed`` (one generator per estimate: for
each batch of examples in turn, its ``(K, batch, latent_dim)`` standard-normal draws, whatever
``sample_chunk``), so a seed gives the same estimate on TensorFlow, JAX and torch for the same
``batch_size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import ops

from keras_vae import backends
from keras_vae import losses as vae_losses
from keras_vae._config_checks import check_int, check_seed
from keras_vae.backends import _shared

_LOG_2PI = math.log(2.0 * math.pi)
# Float32 values of decoder activations per compiled call, at most (256 MB).
MEMORY_ELEMENTS = 2**26
DEFAULT_BATCH_SIZE = 64
MAX_SAMPLES = 1_000_000
LIKELIHOODS = ("bernoulli", "gaussian")


def log_px_function(likelihood, from_logits: bool = True) -> Callable:
    """``fn(x, outputs) -> (rows,)``: the log-density log p(x | z) per example, in nats.

    ``"bernoulli"`` (outputs are logits when ``from_logits``, else probabilities; x must be
    exactly 0 or 1 for this to be a log-probability), ``"gaussian"`` (N(outputs, I), with its
    constant) or a callable marked by `keras_vae.losses.normalized_nll`, read as the
    negative log-likelihood. ``"mse"`` and unmarked callables are refused: they are not
    normalised densities, so no likelihood follows from them.
    """
    if callable(likelihood):
        if not getattr(likelihood, "is_normalized_nll", False):
            raise ValueError(
                "A callable reconstruction loss is not known to be a normalised negative "
                "log-likelihood, so no log p(x) follows from it. If it is one (it integrates "
                "or sums to 1 over the data space), mark it with "
                "keras_vae.losses.normalized_nll(fn)."
            )
        nll = vae_losses.get_reconstruction_loss(likelihood)
    elif likelihood == "bernoulli" and from_logits:
        return bernoulli_log_prob
    elif likelihood == "gaussian":
        return gaussian_log_prob
    elif likelihood in LIKELIHOODS:
        nll = vae_losses.get_reconstruction_loss(likelihood, from_logits=from_logits)
    else:
        raise ValueError(
            f"`likelihood` must be one of {LIKELIHOODS} or a callable marked with "
            f"keras_vae.losses.normalized_nll; received {likelihood!r} ('mse' is a squared "
            "error, not a normalised density: use 'gaussian' for N(outputs, I))."
        )
    return lambda x, outputs: -nll(x, outputs)


def _gaussian_log_prob_elements(x, means):
    return -0.5 * (ops.square(x - means) + _LOG_2PI)


def _per_example(elements, summed=None):
    """``fn(x, outputs) -> (rows,)`` summing the float32 ``elements(x, outputs)``. `log_weights`
    calls ``fn.elements`` on broadcast shapes instead of repeating ``x`` for every sample, or,
    for inference, ``fn.summed(x, outputs)``: ``(batch, 1, pixels)`` and ``(batch, k, pixels)``
    to ``(batch, k)``, where a backend has a faster kernel for the whole sum."""

    def log_px(x, outputs):
        return vae_losses.sum_per_example(
            elements(ops.cast(x, "float32"), ops.cast(outputs, "float32"))
        )

    log_px.elements = elements
    log_px.summed = summed
    return log_px


# log p(x | z) summed per example, stable for any logit and equal to `keras_vae.losses`'
# `softplus(l) - l x`; for inference, each backend's kernel for the whole sum.
bernoulli_log_prob = _per_example(
    _shared.bernoulli_log_prob_elements, backends.bernoulli_log_prob_sum
)
gaussian_log_prob = _per_example(_gaussian_log_prob_elements)


def log_normal(z, mean=None, log_var=None):
    """log N(z; mean, exp(log_var)) summed over the last axis; ``None`` means 0 (float32)."""
    z = ops.cast(z, "float32")
    centred = z if mean is None else z - ops.cast(mean, "float32")
    if log_var is None:
        per_dimension = -0.5 * (_LOG_2PI + ops.square(centred))
    else:
        log_var = ops.cast(log_var, "float32")
        per_dimension = -0.5 * (_LOG_2PI + log_var + ops.square(centred) * ops.exp(-log_var))
    return ops.sum(per_dimension, axis=-1)


def log_weights(
    x,
    z_mean,
    z_log_var,
    eps,
    decode,
    log_px,
    prior_mean=None,
    prior_log_var=None,
    conditions=(),
    inference=False,
):
    """The importance log-weights of ``k`` samples per example, the core of both estimators.

    ``z_k = z_mean + exp(z_log_var / 2) * eps_k`` with ``eps`` of shape ``(batch, k, d)``;
    returns ``(log_w, log_px_z, outputs)``: ``log p(x | z_k) + log p(z_k) - log q(z_k | x)``
    and ``log p(x | z_k)``, float32 ``(batch, k)``, and the decoder outputs of the
    ``batch * k`` samples (example-major). The prior is ``N(prior_mean, exp(prior_log_var))``
    (``None``: 0 and 1); ``conditions`` (labels) are repeated for each sample. `IWAE` trains on
    the log-mean-exp of ``log_w``; `log_likelihood` evaluates it, with ``inference=True``:
    no gradient will be taken, so ``log_px.summed`` (a backend kernel) may replace
    ``log_px.elements``.
    """
    samples, latent = eps.shape[1], eps.shape[2]
    z_mean, z_log_var = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
    eps = ops.cast(eps, "float32")
    z = z_mean[:, None, :] + ops.exp(0.5 * z_log_var)[:, None, :] * eps
    repeated = [ops.repeat(c, samples, axis=0) for c in conditions]
    outputs = decode(ops.reshape(z, (-1, latent)), *repeated)
    elements = getattr(log_px, "elements", None)
    summed = getattr(log_px, "summed", None) if inference else None
    if elements is None:  # a user's likelihood: per-row pairs
        log_px_z = ops.reshape(log_px(ops.repeat(x, samples, axis=0), outputs), (-1, samples))
    elif summed is not None:  # pixels flattened: (batch, 1, pixels) against (batch, k, pixels)
        pixels = math.prod(outputs.shape[1:])
        log_px_z = summed(
            ops.reshape(ops.cast(x, "float32"), (-1, 1, pixels)),
            ops.reshape(ops.cast(outputs, "float32"), (-1, samples, pixels)),
        )
    else:  # x broadcast against the samples, not copied
        data_shape = tuple(outputs.shape[1:])
        per_element = elements(
            ops.cast(x, "float32")[:, None],
            ops.reshape(ops.cast(outputs, "float32"), (-1, samples, *data_shape)),
        )
        log_px_z = ops.sum(per_element, axis=tuple(range(2, 2 + len(data_shape))))
    log_pz = log_normal(
        z,
        None if prior_mean is None else prior_mean[:, None, :],
        None if prior_log_var is None else prior_log_var[:, None, :],
    )
    # log q(z | x) at z = mean + std * eps: the square term is eps**2.
    log_qz = -0.5 * ops.sum(_LOG_2PI + z_log_var[:, None, :] + ops.square(eps), axis=-1)
    return log_px_z + log_pz - log_qz, log_px_z, outputs


class _Estimator:
    """Compiled per-chunk log-weights of one model, for one estimate."""

    def __init__(self, encode, decode, log_px, prior, num_conditions):
        self.num_conditions = num_conditions

        def posterior(x, *conditions):
            z_mean, z_log_var = encode(x, *conditions)
            z_mean, z_log_var = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
            prior_mean, prior_log_var = prior(*conditions) if prior else (None, None)
            zeros = ops.zeros_like(z_mean)
            return (
                z_mean,
                z_log_var,
                zeros if prior_mean is None else ops.cast(prior_mean, "float32"),
                zeros if prior_log_var is None else ops.cast(prior_log_var, "float32"),
            )

        def chunk(x, z_mean, z_log_var, prior_mean, prior_log_var, eps, *conditions):
            # (batch, k) each: the log-weights and log p(x | z). Returned whole, not reduced
            # here: a compiler that fuses both reductions into the logits' pass reads them
            # twice (XLA did, 2x the chunk's time on JAX), and the sums are done in float64.
            log_w, log_px_z, _ = log_weights(
                x,
                z_mean,
                z_log_var,
                eps,
                decode,
                log_px,
                prior_mean,
                prior_log_var,
                conditions,
                inference=True,
            )
            return log_w, log_px_z

        self.posterior = backends.inference_function(posterior)
        self.chunk = backends.inference_function(chunk)


def _logsumexp(values):
    """log(sum(exp(values))) over axis 1, float64, stable (an all -inf row gives -inf)."""
    top = values.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return top[:, 0] + np.log(np.exp(values - top).sum(axis=1))


def _padded(array, size):
    """``array`` with rows repeated from its last one up to ``size`` rows (a full batch)."""
    if len(array) == size:
        return array
    pad = np.repeat(array[-1:], size - len(array), axis=0)
    return np.concatenate([array, pad])


def default_rows() -> int:
    """Decoder rows per compiled call, at most: large enough that the products run at the
    machine's matmul speed, small enough to bound memory and (torch on a CPU) to keep the
    passes over the decoder's outputs in its caches (`keras_vae.backends.inference_rows`)."""
    return backends.inference_rows()


def rows_for(decoder) -> int:
    """Decoder rows per compiled call: `default_rows`, fewer where the decoder's layers'
    outputs for that many rows would exceed `MEMORY_ELEMENTS` values (a conv decoder: about
    1,600 rows for the Keras example's 28x28 network). Counts a functional decoder's layers;
    for any other callable, `default_rows`."""
    rows = default_rows()
    per_row = 0
    for layer in getattr(decoder, "layers", None) or []:
        try:
            shapes = [tensor.shape for tensor in keras.tree.flatten(layer.output)]
        except (AttributeError, ValueError):  # a layer never called symbolically
            return rows
        per_row += sum(math.prod(shape[1:]) for shape in shapes)
    return max(1, min(rows, MEMORY_ELEMENTS // max(per_row, 1)))


def check_num_samples(num_samples, name="num_samples"):
    return check_int(name, num_samples, 1, MAX_SAMPLES)


def estimate(
    encode: Callable,
    decode: Callable,
    log_px: Callable,
    x,
    conditions: Sequence = (),
    prior: Callable | None = None,
    num_samples: int = 1000,
    batch_size: int | None = None,
    seed: int | None = None,
    sample_chunk: int | None = None,
    max_rows: int | None = None,
) -> dict[str, np.ndarray]:
    """The sampling pass both estimators share, over numpy ``x`` and ``conditions``.

    Returns float64 numpy arrays of shape ``(n,)``: ``"log_likelihood"`` (importance-weighted,
    ``K = num_samples``), ``"expected_log_px"`` (the mean of log p(x | z_k) over the same
    samples) and ``"kl"`` (closed-form KL(q(z | x) || p(z))), and ``"z_mean"``,
    ``"z_log_var"``, ``(n, latent_dim)``. ``prior(*conditions) -> (mean, log_var)`` (tensors
    or ``None``) or ``None`` for N(0, I). ``max_rows`` bounds the decoder rows per call
    where ``sample_chunk`` is not given (`rows_for` of a keras decoder; default
    `default_rows`).
    """
    num_samples = check_num_samples(num_samples)
    seed = check_seed("seed", seed)
    x = np.asarray(x, dtype="float32")
    conditions = [np.asarray(c) for c in conditions]
    count = len(x)
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE
    batch_size = min(check_int("batch_size", batch_size, 1, 2**20), max(count, 1))
    rows = sample_chunk and check_int("sample_chunk", sample_chunk, 1, MAX_SAMPLES)
    max_rows = default_rows() if max_rows is None else max_rows
    sample_chunk = min(num_samples, rows or max(1, max_rows // batch_size))
    estimator = _Estimator(encode, decode, log_px, prior, len(conditions))
    rng = np.random.default_rng(seed)
    results = {name: [] for name in ("log_likelihood", "expected_log_px", "kl", "mean", "lv")}
    with backends.no_grad():
        for start in range(0, count, batch_size):
            real = min(batch_size, count - start)
            x_batch = ops.convert_to_tensor(_padded(x[start : start + real], batch_size))
            c_batch = [
                ops.convert_to_tensor(_padded(c[start : start + real], batch_size))
                for c in conditions
            ]
            z_mean, z_log_var, prior_mean, prior_log_var = estimator.posterior(x_batch, *c_batch)
            latent = z_mean.shape[-1]
            total_lse = np.full(batch_size, -np.inf)
            total_log_px = np.zeros(batch_size)
            for done in range(0, num_samples, sample_chunk):
                samples = min(sample_chunk, num_samples - done)
                # Drawn sample-major, so the samples do not depend on sample_chunk.
                eps = rng.standard_normal((samples, real, latent), dtype=np.float32)
                eps = np.ascontiguousarray(eps.transpose(1, 0, 2))
                eps = ops.convert_to_tensor(_padded(eps, batch_size))
                log_w, log_px_z = (
                    ops.convert_to_numpy(t).astype("float64")
                    for t in estimator.chunk(
                        x_batch, z_mean, z_log_var, prior_mean, prior_log_var, eps, *c_batch
                    )
                )
                total_lse = np.logaddexp(total_lse, _logsumexp(log_w))
                total_log_px += log_px_z.sum(axis=1)
            mean, lv = (
                ops.convert_to_numpy(t).astype("float64")[:real] for t in (z_mean, z_log_var)
            )
            pm, plv = (
                ops.convert_to_numpy(t).astype("float64")[:real]
                for t in (prior_mean, prior_log_var)
            )
            kl = 0.5 * (plv - lv + (np.exp(lv) + np.square(mean - pm)) * np.exp(-plv) - 1.0)
            results["log_likelihood"].append(total_lse[:real] - math.log(num_samples))
            results["expected_log_px"].append(total_log_px[:real] / num_samples)
            results["kl"].append(kl.sum(axis=1))
            results["mean"].append(mean)
            results["lv"].append(lv)
    out = {name: np.concatenate(parts) for name, parts in results.items()}
    out["z_mean"], out["z_log_var"] = out.pop("mean"), out.pop("lv")
    return out


def log_likelihood(
    encode: Callable,
    decode: Callable,
    x,
    likelihood="bernoulli",
    from_logits: bool = True,
    num_samples: int = 1000,
    batch_size: int | None = None,
    seed: int | None = None,
    conditions: Sequence = (),
    prior: Callable | None = None,
) -> np.ndarray:
    """Importance-weighted estimate of log p(x) per example, in nats: float64 ``(n,)``.

    Args:
        encode: ``encode(x_batch, *conditions) -> (z_mean, z_log_var)``, backend tensors.
        decode: ``decode(z, *conditions) -> outputs`` (logits for ``"bernoulli"`` with
            ``from_logits``; means for ``"gaussian"``).
        x: numpy data ``(n, ...)``; binary (0/1) for ``"bernoulli"``.
        likelihood: ``"bernoulli"``, ``"gaussian"`` (unit variance) or a callable marked
            with `keras_vae.losses.normalized_nll` (see `log_px_function`).
        from_logits: whether the Bernoulli decoder outputs logits.
        num_samples: ``K``, importance samples per example, in ``[1, 1_000_000]``.
        batch_size: examples per compiled call (default 64); with ``K`` it sets the decoder
            rows per call, ``batch_size * min(K, rows_for(decode) // batch_size)``.
        seed: ``None`` or an int in ``[0, 2**31)``: the numpy seed of the samples.
        conditions: per-example arrays passed to ``encode`` and ``decode`` (labels).
        prior: ``prior(*conditions) -> (mean, log_var)`` or ``None`` for N(0, I).

    Example:

    >>> import keras, numpy as np
    >>> encode = lambda x: (keras.ops.zeros((x.shape[0], 2)), keras.ops.zeros((x.shape[0], 2)))
    >>> decode = lambda z: keras.ops.zeros((z.shape[0], 3))  # p = 0.5 per pixel
    >>> x = np.array([[0.0, 1.0, 1.0]])
    >>> float(np.round(log_likelihood(encode, decode, x, num_samples=10)[0], 4))  # 3 log 0.5
    -2.0794
    """
    return _estimate_for(
        encode, decode, x, likelihood, from_logits, num_samples, batch_size, seed, conditions, prior
    )["log_likelihood"]


def elbo(
    encode: Callable,
    decode: Callable,
    x,
    likelihood="bernoulli",
    from_logits: bool = True,
    num_samples: int = 1,
    batch_size: int | None = None,
    seed: int | None = None,
    conditions: Sequence = (),
    prior: Callable | None = None,
) -> np.ndarray:
    """Per-example ELBO in nats: ``mean_k log p(x | z_k) - KL(q(z | x) || p(z))``, ``(n,)``.

    The KL in closed form, the reconstruction term averaged over ``num_samples`` draws
    ``z_k ~ q(z | x)``; arguments as in `log_likelihood`.
    """
    result = _estimate_for(
        encode, decode, x, likelihood, from_logits, num_samples, batch_size, seed, conditions, prior
    )
    return result["expected_log_px"] - result["kl"]


def _estimate_for(
    encode, decode, x, likelihood, from_logits, num_samples, batch_size, seed, conditions, prior
):
    """`estimate` with the likelihood named as `log_likelihood` and `elbo` take it."""
    log_px = log_px_function(likelihood, from_logits)
    return estimate(
        encode,
        decode,
        log_px,
        x,
        conditions,
        prior,
        num_samples,
        batch_size,
        seed,
        max_rows=rows_for(decode),
    )
