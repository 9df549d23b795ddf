# Everything a fresh Debian 12 or 13 machine needs: `make demo`, `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
SYS_PYTHON := /usr/bin/python3
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
PLUGIN_DIR := $(QGIS_PROFILE)/python/plugins/demsr
DEPS_DIR := $(QGIS_PROFILE)/python/demsr-deps
VENV := .venv
QGIS_PROCESS := scripts/qgis_process
# The plugin is the package src/demsr/ plus the licence and the user's guide beside it.
PKG := src/demsr
PLUGIN_FILES := $(PKG)/. LICENSE README.md
# The system Python (make deps, before any venv) imports the package from the source tree.
SRC_PYTHON := PYTHONPATH=$(CURDIR)/src $(SYS_PYTHON)
export DEMSR_DEPS_DIR := $(DEPS_DIR)
# pip keeps QGIS's own numpy, SciPy, GDAL… at the versions this system has (as the desktop
# installer does): written from the running Python, rewritten only when they change.
CONSTRAINTS := build/constraints.txt
export PIP_CONSTRAINT := $(CURDIR)/$(CONSTRAINTS)
# make deps: TORCH_BUILD=cpu (PyTorch's CPU index; Linux), cu126…, or default (the package
# index's own build: CUDA on Linux, several GB); TORCH_WHEELS=folder (offline);
# TORCH=torch==X (another version than scripts/requirements-plugin.txt's).
TORCH_BUILD ?= cpu
TORCH_WHEELS ?=
TORCH ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help system deps venv install demo test test-fast bench train-default evaluate \
	train-dshat evaluate-voids onnx package clean gpu-check ddp-check compat-check FORCE

help:
	@echo "make demo   install what is missing and super-resolve a bundled real DEM"
	@echo "make test   install what is missing and run the whole test suite"
	@echo "make bench  speed and memory against gdalwarp -r lanczos"
	@echo "make package  dist/demsr-<version>.zip for QGIS's Install from ZIP"
	@echo "make gpu-check  the CUDA paths on this machine's GPU (needs a CUDA build of torch)"
	@echo "make ddp-check  a small training on 2 processes (torchrun, gloo) against 1 process"
	@echo "make compat-check  make demo + make test in Debian 13 and unstable roots (root)"

system:
	@scripts/setup_system.sh

$(CONSTRAINTS): FORCE | system
	@mkdir -p $(@D)
	@$(SYS_PYTHON) $(PKG)/desktop/installer/constraints.py $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# torch goes into a folder the plugin puts on sys.path, so QGIS and qgis_process find it.
deps: system $(DEPS_DIR)/.installed $(DEPS_DIR)/.extras-installed
$(DEPS_DIR)/.installed: scripts/requirements-plugin.txt $(CONSTRAINTS)
	@# pip --target ignores system packages: the installer removes any second numpy etc.
	$(SRC_PYTHON) scripts/install_deps.py --target $(DEPS_DIR) --build $(TORCH_BUILD) \
		$(if $(TORCH_WHEELS),--wheels $(TORCH_WHEELS)) $(if $(TORCH),--torch $(TORCH))
	rm -rf $(DEPS_DIR)/bin
	@echo "$(DEPS_DIR): $$(du -sh $(DEPS_DIR) | cut -f1) on disk"
	touch $@

# The optional extras (Dask distributed, for `python -m demsr mosaic`), after torch.
$(DEPS_DIR)/.extras-installed: scripts/requirements-extras.txt $(DEPS_DIR)/.installed \
		$(CONSTRAINTS)
	$(SYS_PYTHON) -m pip install --quiet --target $(DEPS_DIR) --upgrade -r scripts/requirements-extras.txt
	rm -rf $(DEPS_DIR)/numpy $(DEPS_DIR)/numpy-*.dist-info $(DEPS_DIR)/numpy.libs $(DEPS_DIR)/bin
	touch $@

# The venv holds the test tools and the checkout's src/demsr as an editable install: scripts,
# tests and benchmarks `import demsr` with no path set up of their own.
venv: system $(VENV)/.installed
$(VENV)/.installed: scripts/requirements-test.txt scripts/requirements-extras.txt \
		pyproject.toml $(CONSTRAINTS)
	$(SYS_PYTHON) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r scripts/requirements-test.txt
	$(VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

install: deps
	rm -rf $(PLUGIN_DIR)
	mkdir -p $(PLUGIN_DIR)
	cp -r $(PLUGIN_FILES) $(PLUGIN_DIR)/
	find $(PLUGIN_DIR) -name __pycache__ -prune -exec rm -rf {} +
	@# `plugins enable` exits 1 when the plugin is already enabled: check the result instead.
	@$(QGIS_PROCESS) plugins enable demsr >/dev/null 2>&1 || true
	@$(QGIS_PROCESS) plugins 2>/dev/null | grep -q '^\* demsr$$' || { echo "qgis_process did not load the demsr plugin"; exit 1; }
	@echo "Plugin installed in $(PLUGIN_DIR) and enabled."

demo: install venv
	$(VENV)/bin/python scripts/demo.py

test: install venv
	$(VENV)/bin/python scripts/run_tests.py $(PYTEST_ARGS)

test-fast: venv
	$(VENV)/bin/python scripts/run_tests.py -m "not slow"

bench: install venv
	$(VENV)/bin/python benchmarks/run.py

# Rebuilds the bundled models (about 15–35 min each for ×2, ×3 and ×4 on one CPU core; the
# factor-range models are trained through the engine's finishing step: a narrow ×4 network
# for (1, 2), the new ×4 and ×3 models fine-tuned for [2, 4] and [2, 3], about 15–20 min
# each): fixed data list (scripts/default_data.py), seed 42, then the held-out tables.
train-default: deps venv
	$(VENV)/bin/python scripts/train_default.py --scale 2
	$(VENV)/bin/python scripts/train_default.py --scale 3 --threads 1
	$(VENV)/bin/python scripts/train_default.py --scale 4
	$(VENV)/bin/python scripts/train_default.py --range 1 2 --threads 1
	$(VENV)/bin/python scripts/train_default.py --range 2 4 --threads 1
	$(VENV)/bin/python scripts/train_default.py --range 2 3 --threads 1
	$(MAKE) onnx
	$(MAKE) evaluate
	$(VENV)/bin/python scripts/evaluate_factors.py --out build/evaluation_factors.md

evaluate: deps venv
	$(VENV)/bin/python scripts/evaluate.py --speed ../shared/data/dems/demcompare_srtm_ref_3arcsec_turkey.tif --out build/evaluation.md

# Rebuilds the bundled DS-HAT void-repair model (about 15 min on one CPU core): fixed data
# list (scripts/default_data.py TRAIN), synthetic voids, seed 42, then the held-out table.
train-dshat: deps venv
	OMP_NUM_THREADS=1 $(VENV)/bin/python scripts/train_dshat.py --threads 1
	$(MAKE) onnx
	$(MAKE) evaluate-voids

# resources/models/NAME.onnx from every NAME.pt (a few seconds): the models for ONNX Runtime,
# each checked against PyTorch on a test surface (scripts/export_onnx.py).
onnx: deps venv
	$(VENV)/bin/python scripts/export_onnx.py

evaluate-voids: deps venv
	OMP_NUM_THREADS=1 $(VENV)/bin/python scripts/evaluate_voids.py --out build/evaluation_voids.md
	OMP_NUM_THREADS=1 $(VENV)/bin/python scripts/evaluate_voids.py --auxiliary \
		--out build/evaluation_voids_auxiliary.md
	OMP_NUM_THREADS=1 $(VENV)/bin/python scripts/evaluate_voids.py --real-pairs \
		--out build/evaluation_voids_real_pairs.md

# A small real training on 2 processes (torchrun, DDP over gloo) against the same training
# in one process (under 5 min on 2 cores); fails when they differ beyond rounding.
ddp-check: deps venv
	$(VENV)/bin/python scripts/ddp_check.py

# The CUDA paths on one GPU (under 5 min): super-resolve speed and CPU agreement, void repair,
# AMP training steps of each architecture, the out-of-memory halving. Needs a CUDA build of
# torch in $(DEPS_DIR) (or DEMSR_DEPS_DIR); says "no CUDA device" and fails without one.
gpu-check: venv
	$(VENV)/bin/python scripts/gpu_check.py

# The ZIP for Plugins ▸ Manage and Install Plugins ▸ Install from ZIP (and plugins.qgis.org).
package:
	$(SYS_PYTHON) scripts/package.py --out dist

# make demo + make test from a fresh clone of this branch's last commit, in Debian 13 and
# Debian unstable roots built with debootstrap (as root; ~10 min the first time, then reused).
# Not in .ci/run: it takes about an hour. Summary: build/compat/summary.txt.
compat-check:
	scripts/compat_check.sh $(SUITES)

clean:
	rm -rf build dist $(VENV) .pytest_cache
