.PHONY: check lint types test run bench

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
