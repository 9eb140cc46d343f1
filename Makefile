# Convenience targets; each calls the script the README documents.
.PHONY: run test bench simulate

run:
	scripts/run

test:
	scripts/test

# A recorded scenario and its config; override with `make simulate SCENARIO=... SCENARIO_CONFIG=...`.
SCENARIO ?= tests/scenarios/late_espresso.jsonl
SCENARIO_CONFIG ?= tests/scenarios/config.yaml

simulate:
	.venv/bin/sleepcoach simulate --config $(SCENARIO_CONFIG) $(SCENARIO)

bench:
	.venv/bin/python bench/simulate.py
