# The set-up commands (README): `make demo`, `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test install system-deps lint unit bench sample-data clean lab

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $@

install: $(STAMP)

# Debian's prometheus (prometheus + promtool), victoria-metrics, Java 17 (Spark) and
# chromium; installed when missing.
system-deps:
	@bash scripts/ensure_system_deps.sh

# The main job on the bundled data. The judge exits 1 on NO_GO and 2 on INCONCLUSIVE:
# for the demo those are results, not failures (only 3, a usage or data error, is).
# Every run names its service, release and environment; the index lists them all.
demo: install
	@mkdir -p reports/demo
	$(BIN)/wsanalysis summary --data data/sample | tee reports/demo/summary.txt
	$(BIN)/wsanalysis canary --param data=data/sample --param canary_share=0.1 \
		--service chat --release v2.3.1 --environment production \
		--out reports/demo/canary || [ $$? -le 2 ]
	$(BIN)/wsanalysis report incident --param data=data/network_outage \
		--service chat --environment production --out reports/demo/incident
	$(BIN)/wsanalysis judge --data data/aa_baseline --canary-share 0.1 \
		--service chat --release v2.3.0 --environment staging \
		--out reports/demo/pipeline/chat-v2.3.0/verdict.json || [ $$? -le 2 ]
	$(BIN)/wsanalysis judge --data data/error_rate_x2 --canary-share 0.1 --sequential \
		--service chat --release v2.4.0-rc1 --environment production \
		--out reports/demo/pipeline/chat-v2.4.0-rc1/verdict.json || [ $$? -le 2 ]
	$(BIN)/wsanalysis judge --data data/ttfb_p95_plus150 --sequential \
		--service assistant --release 7d9f8c1 --environment production \
		--out reports/demo/pipeline/assistant-7d9f8c1/verdict.json || [ $$? -le 2 ]
	$(BIN)/wsanalysis report index reports/demo
	@echo "overview:        reports/demo/summary.txt"
	@echo "canary report:   reports/demo/canary/report.html (verdict.json, report.ipynb beside it)"
	@echo "incident report: reports/demo/incident/report.html (findings.json, report.ipynb beside it)"
	@echo "release history: reports/demo/index.html (every run above, filters, trends)"

# JupyterLab on the project's venv, rooted at the repository (URL with its token printed
# first; news prompt and update check off). LAB_PORT=8890 make lab for another port.
lab: install
	$(BIN)/python scripts/lab.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: install
	$(BIN)/python -m pytest -q

test: install system-deps lint unit

bench: install system-deps
	@echo "benchmarks: see benchmarks/README.md for the command of each table"

sample-data: install
	$(BIN)/python scripts/make_sample_dataset.py --out data/sample

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
