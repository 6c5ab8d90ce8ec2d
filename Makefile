# Two commands on a fresh machine:  make demo  (install and run the demo)  and  make test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

PRISM_VERSION := 5.14.2
PRISM := .prism/node_modules/.bin/prism

.PHONY: bench demo test lint typecheck check manifest messages clean prism browser

# Each stamp remembers that its install step ran against the current pyproject.toml.
$(VENV)/.installed-run: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	$(BIN)/kindly demo

# Prism serves the platforms' OpenAPI files for the conformance tests; without npm those
# tests skip and say why.
$(PRISM):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix .prism --no-audit --no-fund --silent @stoplight/prism-cli@$(PRISM_VERSION) \
		|| echo "Prism could not be installed: the conformance tests will skip"; \
	else echo "npm not found: the Prism conformance tests will skip"; fi

prism: $(PRISM)

# The web app's browser test drives Debian's Chromium (browsers cannot be downloaded
# here); without it, that test skips and says why.
browser:
	@if test -x /usr/bin/chromium; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "Chromium could not be installed: the browser test will skip"; \
	else echo "no /usr/bin/chromium and no root to install it: the browser test will skip"; fi

test: $(VENV)/.installed-dev prism browser
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

check: lint typecheck test

# Every figure of docs/performance.md, measured again (about ten minutes; run it on a
# quiet machine, with nothing else running). Each script also runs alone.
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_cli.py --runs 15
	$(BIN)/python benchmarks/bench_planning.py --sizes 10000,100000 --repeat 3
	$(BIN)/python benchmarks/bench_sync.py --clients 100000 --rounds 3
	$(BIN)/python benchmarks/bench_render.py --count 900 --rounds 5 --no-qr
	$(BIN)/python benchmarks/bench_render.py --count 900 --rounds 5
	$(BIN)/python benchmarks/bench_smtp.py --count 10000 --no-reuse-count 1000
	$(BIN)/python benchmarks/bench_send.py --count 1000 --rounds 3
	$(BIN)/python benchmarks/bench_send.py --count 1000 --rounds 3 --connections 2
	for platform in quickbooks exact moneybird fiken pennylane; do \
	  $(BIN)/python benchmarks/bench_$${platform}_sync.py || exit 1; \
	done

manifest: $(VENV)/.installed-run
	$(BIN)/python -m plugin.app.manifest --write

# The web app's words: extracted from its pages and views, merged into each catalog.
WEB := plugin/app/web
messages: $(VENV)/.installed-dev
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ --no-location --omit-header -o $(WEB)/messages.pot .
	for lang in nl de fr nb vi; do \
	  if [ -f $(WEB)/translations/$$lang/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete --omit-header -i $(WEB)/messages.pot -d $(WEB)/translations -l $$lang; \
	  else \
	    $(BIN)/pybabel init -i $(WEB)/messages.pot -d $(WEB)/translations -l $$lang; \
	  fi; \
	done

clean:
	rm -rf $(VENV) .prism .pytest_cache .mypy_cache .ruff_cache
