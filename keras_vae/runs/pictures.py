"""The PNG pictures `train` writes into a run folder (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path

from keras_vae import plotting
from keras_vae.runs.models import _codes, _reconstruct


def _write_pictures(model, out: Path, x_test, y_test, history, seed, class_names) -> list[Path]:
    written: list[Path] = []

    def keep(name: str) -> Path:
        written.append(out / name)
        return out / name

    if model.conditional and model.generative:
        plotting.class_conditional_grid(
            model,
            n_per_class=8,
            seed=seed,
            path=keep("class_conditional.png"),
            class_names=class_names,
        )
    elif model.generative:
        plotting.sample_grid(
            model.generate(64, seed=seed),
            ncols=8,
            path=keep("samples.png"),
            title="Samples from the prior",
        )
    count = min(8, len(x_test))
    inputs, labels = x_test[:count], None if y_test is None else y_test[:count]
    plotting.reconstruction_pairs(
        inputs, _reconstruct(model, inputs, labels), n=count, path=keep("reconstructions.png")
    )
    if model.denoising:
        noisy = model.corrupt(inputs, seed=seed)  # the plot clips to [0, 1]
        plotting.reconstruction_pairs(
            inputs,
            _reconstruct(model, noisy, labels),
            noisy=noisy,
            n=count,
            path=keep("denoising.png"),
            title="Clean, noisy and denoised",
        )
    scatter_count = min(5000, len(x_test))
    scatter_labels = None if y_test is None else y_test[:scatter_count]
    codes = _codes(model, x_test[:scatter_count], scatter_labels)
    plotting.latent_scatter(
        codes.reshape(len(codes), -1),
        labels=scatter_labels,
        path=keep("latent_scatter.png"),
        class_names=class_names,
    )
    if model.latent_shape == (2,) and model.generative and not model.conditional:
        plotting.latent_manifold(model, n=15, extent=3.0, path=keep("latent_manifold.png"))
    plotting.loss_curves(history, path=keep("loss_curves.png"))
    return written
