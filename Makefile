# The two commands README promises, each setting itself up on a fresh machine:
#   make reproduce   execute the claim notebooks (PROFILE=cpu by default) into reports/
#   make test        the whole test suite, including nbval over the committed reports
# Both create .venv when it is missing and install the package with its extras;
# the install is stamped, so a second call installs nothing.

PYTHON_SYSTEM ?= python3
VENV          := .venv
PY            := $(VENV)/bin/python
STAMP         := $(VENV)/.installed
PROFILE       ?= cpu
ONLY          ?=

.PHONY: help venv test reproduce smoke bench data clean-venv

help:
	@echo "make reproduce [PROFILE=cpu|smoke|paper] [ONLY='01 02']  execute notebooks into reports/PROFILE/"
	@echo "make smoke                                             the same at smoke scale (minutes)"
	@echo "make test                                              unit tests + nbval over reports/"
	@echo "make bench                                             speed comparison (python -m replication bench)"
	@echo "make data                                              extract and cache the three mirrored datasets"

venv: $(STAMP)

# Re-install only when the package's declared dependencies change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[notebooks]"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests reports/smoke reports/cpu --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

reproduce: $(STAMP)
	$(PY) -m replication reproduce --profile $(PROFILE) $(if $(ONLY),--only $(ONLY),)

smoke: PROFILE = smoke
smoke: reproduce

bench: $(STAMP)
	$(PY) -m replication bench

data: $(STAMP)
	$(PY) -m replication data prepare cifar10-jpeg tiny-imagenet-200 imagenette2-128

clean-venv:
	rm -rf $(VENV)
