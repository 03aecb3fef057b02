# Runyard: every install step lives here (CI and new machines start from nothing).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# chromium: Debian's browser, driven headless by Playwright in the console's browser tests (tests/browser).
# openssh-server: a real sshd for the tests of git over SSH with `runyard git-credentials` (tests/e2e).
# podman runc busybox-static uidmap slirp4netns: the OCI runtime (`--runtime oci`; Runyard writes podman's
# containers.conf itself) and its test images; docker-registry skopeo: the local image registry.
APT_PACKAGES := git ca-certificates haproxy chromium openssh-server \
  podman runc busybox-static uidmap slirp4netns docker-registry skopeo
ARGS ?=
LINT_PATHS := src tests $(wildcard bench)

.PHONY: deps venv run test lint fmt clean

# System packages, installed only when missing (idempotent, no apt-get update when all are present).
# Node.js and npm (the NODEJS_* managed runtimes) are checked by command: a NodeSource node bundles npm.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BIN)/runyard-installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/runyard-installed

run: deps venv
	$(BIN)/runyard serve $(ARGS)

test: deps venv
	$(BIN)/python -m pytest $(ARGS)

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
