# Two commands set everything up on a fresh machine (see README.md):
#   make lab    JupyterLab on notebooks/, local backend
#   make test   lint, format and type checks, then the whole test suite and the
#               notebooks under nbval (what .ci/run calls)
#   make notebooks  rebuild the lesson notebooks and their stored outputs
#   make docs   the website in _build/html from the lessons' stored outputs
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
export COALMINE_HOME ?= $(CURDIR)/.lab

.PHONY: lab test check chromium prometheus notebooks docs site-images bench bench-dashboard soak manifests clean cluster-check

$(BIN)/python:
	@echo "creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependency list changes. pip lists each package as it goes: the
# first install downloads JupyterLab and friends (a few minutes on a slow network).
PIP_INSTALL := $(BIN)/python -m pip install --progress-bar on --no-color
$(VENV)/.installed-lab: pyproject.toml | $(BIN)/python
	@echo "installing the lab's packages into $(VENV) (the first time takes a few minutes)"
	$(PIP_INSTALL) -e '.[lab,kubernetes]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "installing the lab's and the tests' packages into $(VENV) (the first time takes a few minutes)"
	$(PIP_INSTALL) -e '.[lab,test,docs]'
	touch $@

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	@echo "installing the website's packages into $(VENV)"
	$(PIP_INSTALL) -e '.[docs]'
	touch $@

# JupyterLab on notebooks/, opened on lesson 0. The shipped notebooks are trusted (their
# outputs are ours), and the file browser shows only the lessons and their README
# (notebooks/.jupyter-lab.json hides src/, conftest.py and sanitize.cfg).
LAB_CONFIG := notebooks/.jupyter-lab.json
lab: $(VENV)/.installed-lab
	$(BIN)/jupyter trust notebooks/[0-9][0-9]-*.ipynb
	$(BIN)/jupyter lab --config=$(LAB_CONFIG) --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(ROOT_FLAG) \
	  notebooks/00-start-here.ipynb

# The browser tests drive Debian's chromium; we never download a browser (no
# `playwright install`). As root with apt-get, install it when missing (try first, and
# refresh the package lists only if that fails); otherwise say how, and the browser
# tests skip themselves.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests (apt-get, about a minute)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; } || \
	  echo "could not install chromium: the browser tests will be skipped (try: apt-get install chromium)"; \
	else \
	  echo "chromium not found: the browser tests will be skipped (install it with: sudo apt-get install chromium)"; \
	fi

# `coalmine install prometheus` runs Debian's prometheus (2.42, /usr/bin/prometheus); we
# never download one. As root with apt-get, install it when missing, as for chromium
# (without the recommended exporters), and stop the system service the package starts
# (it would listen on every interface at :9090; the lab starts its own on 127.0.0.1);
# otherwise say how, and the tests that need a real Prometheus skip themselves (the
# built-in canary checks need none).
prometheus:
	@if command -v prometheus >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's prometheus for the lab and its tests (apt-get, about a minute)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  if { apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; }; }; then \
	    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || :; fi; \
	  else \
	    echo "could not install prometheus: the tests that need it will be skipped (try: apt-get install prometheus)"; \
	  fi; \
	else \
	  echo "prometheus not found: the tests that need it will be skipped (install it with: sudo apt-get install prometheus)"; \
	fi

# Lint, format and types (seconds): configured in pyproject.toml.
check: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pytest exits 5 when a selection collects nothing; that is not a failure here.
test: $(VENV)/.installed-test chromium prometheus check
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Regenerate the lessons' stored outputs: build notebooks/NN-*.ipynb from notebooks/src/
# and run each one in a fresh lab (nbval in `make test` compares against them).
notebooks: $(VENV)/.installed-test
	$(BIN)/python scripts/build_notebooks.py --execute

# The website in _build/html (index.html at the top): the lessons with the outputs
# stored in them (never executed here), the README and docs/*.md, by Sphinx with
# myst-nb and sphinx-book-theme (site/conf.py), warnings as errors. Offline: nothing
# is downloaded. Launch links appear once [project.urls] Repository is set in
# pyproject.toml (site/launch.py).
docs: $(VENV)/.installed-docs
	$(BIN)/python site/build.py

# Remake the site's still pictures of the live widgets (lesson 5's dashboard, lesson
# 8's rollout view): `coalmine demo` runs the rollout headless on a fresh temporary
# lab and saves the same plot (about 30 s each). Commit the PNGs.
site-images: $(VENV)/.installed-lab
	home=$$(mktemp -d) && COALMINE_HOME=$$home $(BIN)/coalmine demo --output site/images/dashboard.png; \
	  rc=$$?; rm -rf "$$home"; exit $$rc
	home=$$(mktemp -d) && COALMINE_HOME=$$home $(BIN)/coalmine demo --progressive --output site/images/progressive.png; \
	  rc=$$?; rm -rf "$$home"; exit $$rc

# wrk (Debian's package) is the load generator when it can be had; else a Python one.
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq wrk >/dev/null 2>&1; } || echo "wrk not available: using the Python load generator"
	$(BIN)/python benchmarks/gateway.py

# The live dashboard in JupyterLab + Chromium at 200 req/s, and the generator's accuracy.
bench-dashboard: $(VENV)/.installed-test chromium
	$(BIN)/python benchmarks/dashboard.py

# Minutes of open-loop traffic at 200 and 1000 req/s while routes flip, big objects
# and bad inputs are applied and pods are killed: failed and stale answers, p99, CPU, RSS.
soak: $(VENV)/.installed-test
	$(BIN)/python benchmarks/soak.py

# The seed's whole flow on the current kube context (a real cluster), PASS/FAIL per step;
# ROLLOUTS=1 then installs Flagger and runs a good and a bad rollout. See
# docs/real-cluster.md. Leaves the cluster as it was.
cluster-check: $(VENV)/.installed-lab
	$(BIN)/python scripts/cluster_check.py $(if $(ROLLOUTS),--rollouts) $(CLUSTER_CHECK_ARGS)

manifests: $(VENV)/.installed-test
	$(BIN)/python scripts/render_manifests.py

clean:
	-COALMINE_HOME=$(COALMINE_HOME) $(BIN)/coalmine down
	rm -rf .lab .pytest_cache test-output _build
