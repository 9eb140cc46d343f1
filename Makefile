# Convenience targets; each calls the script the README documents.
.PHONY: run test bench simulate

run:
	scripts/run

test:
	scripts/test

simulate:
	.venv/bin/sleepcoach simulate --config config/example.yaml config/example-scenario.jsonl

bench:
	.venv/bin/python bench/simulate.py
