.PHONY: check lint types test run bench real-llm

check: lint types test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

types:
	.venv/bin/mypy

test:
	./scripts/test.sh

run:
	./scripts/run.sh

# the scenario suite with a real local model (installs the server and a 1.1 GB model into ~/.cache/sre-triage/llm)
real-llm:
	.venv/bin/python -m bench.real_llm $(ARGS)
