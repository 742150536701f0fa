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
# A re-run aside (README, "Re-running and comparing"): STORE=fresh trains every run into fresh/ instead
# of reading runs/, REPORTS (default: fresh-reports) receives the reports instead of reports/, and
# SEEDS='[5, 6, 7]' asks for other seeds (default: the profile's).
STORE         ?=
REPORTS       ?= $(if $(STORE),$(STORE)-reports,)
SEEDS         ?=

.PHONY: help venv test reproduce smoke site bench cost data protocol clean-venv

help:
	@echo "make reproduce [PROFILE=cpu|smoke|paper] [ONLY='01 02']  execute notebooks into reports/PROFILE/"
	@echo "make reproduce PROFILE=cpu STORE=fresh [SEEDS='[5, 6, 7]']  retrain aside into fresh/, reports into fresh-reports/"
	@echo "  then: $(PY) -m replication compare reports/cpu fresh-reports/cpu   the re-run beside the committed reports"
	@echo "make smoke                                             the same at smoke scale (minutes)"
	@echo "make test                                              unit tests + nbval over reports/"
	@echo "make site                                             the reports as a web page: open site/index.html"
	@echo "make bench                                             speed comparison (python -m replication bench)"
	@echo "make cost                                              what a cpu protocol run costs on this CPU, native and AVX2 (notebook 00)"
	@echo "make data                                              extract and cache the three mirrored datasets"
	@echo "make protocol [COMMIT=--git-commit]                    train the paired protocol's cpu runs (hours; resumable)"

venv: $(STAMP)

# Re-install only when the package's declared dependencies change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[notebooks]"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests reports/smoke reports/cpu --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

reproduce: $(STAMP)
	$(PY) -m replication reproduce --profile $(PROFILE) $(if $(ONLY),--only $(ONLY),) \
	    $(if $(STORE),--store '$(STORE)',) $(if $(REPORTS),--reports '$(REPORTS)',) $(if $(SEEDS),-p seeds '$(SEEDS)',)

smoke: PROFILE = smoke
smoke: reproduce

# reports/README.md and every executed report notebook as a static site (works from file://).
site: $(STAMP)
	$(PY) -m replication site

bench: $(STAMP)
	$(PY) -m replication bench

# What one run of each cpu recipe costs on this CPU: natively, and pinned to AVX2 kernels (what a CPU
# without AVX-512 pays). Records go to benchmarks/protocol/ (commit them); notebook 00 shows them.
# Time it while nothing else trains.
cost: $(STAMP)
	$(PY) -m replication bench --only protocol --record-dir benchmarks/protocol
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m replication bench --only protocol --record-dir benchmarks/protocol

data: $(STAMP)
	$(PY) -m replication data prepare cifar10-jpeg tiny-imagenet-200 imagenette2-128

# The paired protocol's cpu runs (notebook 00 and the arms of 03-11), in the order the reports need them:
# each dataset's tuning grid first (its baselines and arms are trained only once the grid confirms the
# recipe), then its baselines at the seeds the cpu reports read (all notebook 00 needs), then every arm at those
# seeds (profiles/cpu.yaml's, and notebook 09's five for the baseline and one_tower), then the remaining
# seeds for more power. Every step skips what the store
# holds; a killed run resumes from its checkpoint. COMMIT=--git-commit commits each run as it lands (how the
# project fills runs/). SEEDS given on the command line trains those seeds only.
REPORT_SEEDS := [0, 1, 2]
EXTRA_SEEDS := [3, 4]
NETTE_ARMS := no_lrn lrn_scale_only non_overlapping no_lighting no_dropout one_tower \
              pool_before_lrn conv5_dropout fc8_relu torchvision_widths
CIFAR_ARMS := no_lrn lrn_scale_only
TRAIN_PROTOCOL = $(PY) -m replication.experiments --profile cpu --only 00 $(COMMIT)
protocol: $(STAMP)
	$(TRAIN_PROTOCOL) --datasets imagenette --seeds '[]'
	$(TRAIN_PROTOCOL) --datasets imagenette --seeds '$(or $(SEEDS),$(REPORT_SEEDS))'
	$(TRAIN_PROTOCOL) --datasets imagenette --seeds '$(or $(SEEDS),$(REPORT_SEEDS))' --arms $(NETTE_ARMS)
	$(if $(SEEDS),,$(TRAIN_PROTOCOL) --datasets imagenette --seeds '$(EXTRA_SEEDS)' --arms one_tower)
	$(TRAIN_PROTOCOL) --datasets cifar --seeds '[]'
	$(TRAIN_PROTOCOL) --datasets cifar --seeds '$(or $(SEEDS),$(REPORT_SEEDS))'
	$(TRAIN_PROTOCOL) --datasets cifar --seeds '$(or $(SEEDS),$(REPORT_SEEDS))' --arms $(CIFAR_ARMS)
	$(if $(SEEDS),,$(TRAIN_PROTOCOL) --datasets imagenette --seeds '$(EXTRA_SEEDS)' --arms $(NETTE_ARMS))
	$(if $(SEEDS),,$(TRAIN_PROTOCOL) --datasets cifar --seeds '$(EXTRA_SEEDS)' --arms $(CIFAR_ARMS))

clean-venv:
	rm -rf $(VENV)
