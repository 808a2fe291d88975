# Two commands do everything on a fresh machine (see README):
#   make demo   set up, then run the main job
#   make test   set up, then check the layering, build the docs and run the default test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-oldest docs setup data clean

demo: setup data
	$(BIN)/tf-lottery $(ARGS)

# The layering contract first (import-linter, setup.cfg), then the docs (-W), then one pytest
# worker per core (pytest-xdist); a test file stays on one worker, so its module fixtures
# (trained runs) are built once. JOBS=0 runs in this process. The slow
# tests (kills at every crash point) stay in one process, as measured.
JOBS ?= auto

test: setup
	$(BIN)/lint-imports --no-cache
	$(MAKE) --no-print-directory docs
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

# The documentation site, warnings as errors (a broken reference or a stale name fails).
docs: setup
	cd docs && TF_CPP_MIN_LOG_LEVEL=2 ../$(BIN)/sphinx-build -W --keep-going -q -b html . _build/html

test-slow: setup
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

setup: $(STAMP)

# Reinstalls when the package definition or the locked set changes. constraints.txt pins every
# package to the set measured together here; setup.cfg gives the library's ranges. The transformers
# extra brings torch's CPU wheel (190 MB): its tests are skipped, by name, where it is not installed.
EXTRAS ?= test,docs,hub,baselines,tensorboard,transformers

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The oldest supported versions (constraints-oldest.txt: TensorFlow 2.20, Keras 3.12, absl-py 2.x,
# no baselines extra) in a virtual environment of their own, and a fast subset on them.
OLDEST       ?= .venv-oldest
OLDEST_TESTS ?= tests/surgery tests/criteria tests/export/test_saved_model.py \
	tests/test_cli.py::test_a_grasp_run_prints_no_tensorflow_log_lines_and_names_what_it_removes

test-oldest:
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip
	$(OLDEST)/bin/python -m pip install -q -c constraints-oldest.txt -e ".[test]"
	$(OLDEST)/bin/python -m pip list 2>/dev/null | grep -iE "^(tensorflow|keras|absl-py|numpy|tf.keras|tensorflow-model-optimization) "
	$(OLDEST)/bin/python -m pytest -q -n $(JOBS) --dist loadfile $(OLDEST_TESTS)

# Fashion-MNIST and the text corpora (fortunes, the Python documentation's sources) from Debian
# (install offline from the package mirror); skipped when present.
data:
	@{ test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz && test -d /usr/share/games/fortunes && \
	   ls -d /usr/share/doc/python3*/html/_sources >/dev/null 2>&1; } || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist fortunes \
	    python3-doc; } || \
	  echo "warning: could not install dataset-fashion-mnist, fortunes and python3-doc (needs root and apt); see README"

clean:
	rm -rf $(VENV) $(OLDEST) *.egg-info docs/_build
