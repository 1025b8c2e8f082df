# Everything a fresh machine needs: venv, pip packages, Debian packages (redis-server, chromium).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_GET := $(shell command -v apt-get 2>/dev/null)
# apt-get needs root; use sudo when we are not root and it exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo 2>/dev/null)

.PHONY: install system-deps run test lint bench train data

$(STAMP): pyproject.toml Makefile | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first and exactly 2.13.0: the local CPU build, not gigabytes of CUDA wheels.
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[test,perceptual]'
	# DistillMOS for `evaluate`, weights inside the wheel. Without dependencies: both declare
	# torchaudio, whose PyPI wheels are CUDA builds that fail to load beside the CPU torch (and
	# xls-r-sqa declares transformers); the model needs only torch and numpy, and
	# model.metrics imports it without torchaudio.
	$(VENV)/bin/pip install -q --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0
	touch $@

install: $(STAMP)

# python3-venv makes .venv on stock Debian; redis-server backs the queue and the integration
# tests; chromium drives the browser tests.
system-deps:
	@missing=""; \
	python3 -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ -z "$(APT_GET)" ]; then echo "please install:$$missing"; exit 1; fi; \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) system-deps lint
	$(PY) -m pytest

run: $(STAMP) system-deps
	$(PY) -m worker.serve

bench: $(STAMP)
	$(PY) -m model bench

data: $(STAMP)
	$(PY) -m model prepare --corpus debian --out data/

train: $(STAMP)
	$(PY) -m model train --data data/ --model audiounet --scale 4 --out runs/audiounet-x4
