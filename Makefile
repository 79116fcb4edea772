# keras_vae: `make demo` trains and exports the main model, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
FASHION_MNIST := /usr/share/datasets/fashion-mnist
# torch 2.13.0 is a CPU build (a bare `torch` pulls a multi-GB CUDA build); tests only.
TORCH_PIN := torch==2.13.0
TEST_ENV := TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore::DeprecationWarning
# Files whose behaviour depends on the Keras backend: run on jax and torch too.
BACKEND_TESTS := tests/test_layers.py tests/test_models.py tests/test_callbacks.py tests/test_inputs.py \
	tests/test_safe_loading.py tests/test_model_contract.py tests/test_keras_compat.py \
	tests/test_export_backends.py tests/test_likelihood.py tests/test_iwae.py tests/test_prior.py \
	tests/test_contractive.py tests/test_adversarial.py

.PHONY: demo test test-tensorflow test-jax test-torch data venv bench bench-quick bench-steps bench-paired bench-contractive bench-likelihood quality saved-models lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,plot,jax,onnx]" "$(TORCH_PIN)"
	touch $(STAMP)

venv: $(STAMP)

# Debian's real Fashion-MNIST IDX files; without apt (or root) the data loader falls back to a
# TFDS download, or to KERAS_VAE_DATA_DIR.
data:
	@if [ ! -d $(FASHION_MNIST) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	fi

demo: $(STAMP) data
	$(VENV)/bin/keras-vae train --model vae --arch mlp --latent-dim 16 --epochs 20 --batch-size 128 \
		--sample-every 5 --overwrite --out saved_models/demo

test: test-tensorflow test-jax test-torch

test-tensorflow: $(STAMP) data
	KERAS_BACKEND=tensorflow $(TEST_ENV) $(PY) -m pytest -q

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(TEST_ENV) $(PY) -m pytest -q $(BACKEND_TESTS)

test-torch: $(STAMP)
	KERAS_BACKEND=torch $(TEST_ENV) $(PY) -m pytest -q $(BACKEND_TESTS)

bench: $(STAMP) data
	$(PY) -m benchmarks.run

bench-quick: $(STAMP) data
	$(PY) -m benchmarks.run --quick

bench-steps: $(STAMP)
	$(PY) -m benchmarks.steps --all

bench-paired: $(STAMP) data
	$(PY) -m benchmarks.paired --all

# ms per training step of ContractiveAE (exact Jacobian, 1/4/16 projections) against a plain AE.
bench-contractive: $(STAMP)
	$(PY) -m benchmarks.contractive_cost --all

# log_likelihood (MLP VAE, K=1000 on the 10,000 test images) against the matmul ceiling.
bench-likelihood: $(STAMP) data
	$(PY) -m benchmarks.likelihood_speed

# Test NLL (K=1000), -ELBO, active units and conditional accuracy of keras_vae's models and the
# peers on dynamically binarised Fashion-MNIST: benchmarks/results/quality.{md,json}.
quality: $(STAMP) data
	$(PY) -m benchmarks.quality

saved-models: $(STAMP) data
	$(PY) saved_models/build.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs examples/output saved_models/demo .pytest_cache
