# One command each: `make atlas` (set up + build the sample atlas, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-test-stamp
SITE_INDEX := build/site/index.html

.PHONY: setup setup-test browser webtools atlas serve test lint bench clean

# What the atlas needs and nothing more: the package and its dependencies (no test or benchmark extra;
# without the parquet extra the metric rows are gzip CSV). A CPU-only PyTorch installed into $(VENV)
# beforehand is kept (see the README).
setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e .
	touch $(STAMP)

# The test suite's extras on top: pytest, Playwright, Hypothesis, ruff, Ray, pyarrow, open_clip.
setup-test: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -e '.[test]'
	touch $(TEST_STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download is not used), a Java
# runtime for the Nu Html Checker, and Node.js for the page scripts' unit tests (and npm for the web tools). Installed with apt-get as root or through sudo, when missing.
APT_PACKAGES := $(if $(wildcard /usr/bin/chromium),,chromium) $(if $(shell command -v java),,default-jre-headless) \
	$(if $(shell command -v node),,nodejs npm)
browser:
	@if [ -z "$(strip $(APT_PACKAGES))" ]; then echo "chromium, java and node: present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	else echo "warning: cannot install $(APT_PACKAGES); the tests that need them are skipped (fail with CI=true)" >&2; fi

# axe-core (accessibility scan) and the Nu Html Checker (vnu-jar, needs Java) for the site tests.
webtools:
	@if command -v npm >/dev/null; then \
	  npm install --prefix .cache/node --no-audit --no-fund --ignore-scripts --silent axe-core@4.14.1 vnu-jar@26.9.27; \
	else echo "warning: no npm; accessibility and HTML-validity tests will be skipped" >&2; fi

atlas: setup
	$(BIN)/atlas build --out build

# Serves the atlas there is; builds the sample first only when there is none (`make atlas` rebuilds).
$(SITE_INDEX): | $(STAMP)
	$(BIN)/atlas build --out build

serve: setup $(SITE_INDEX)
	$(BIN)/atlas serve --site-dir build/site

test: setup-test browser webtools
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup-test
	$(BIN)/ruff check .

bench: setup-test
	$(BIN)/pip install -e '.[bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf build site .pytest_cache
