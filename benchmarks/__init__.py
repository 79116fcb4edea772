"""Benchmarks of keras_vae against peer VAE implementations; run `python -m benchmarks.run`."""
