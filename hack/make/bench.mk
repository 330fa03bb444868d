# Benchmarks (bench/) and the fault soak (tests/soak/); opt-in, not part of `make test`.
# Each bench-pN prints one Markdown table row on stdout (progress on stderr); `make bench` runs all
# six under one table header. Results and how to read them: docs/benchmarks.md.
# P3, P4 and P5 take --count, e.g. `make bench-p3 BENCH_ARGS="--count 10000"`; P3 measures its
# baseline (a plain client making the same writes) in the same run.
.PHONY: bench bench-p1 bench-p2 bench-p3 bench-p4 bench-p5 bench-p6 soak

BENCH_ARGS ?=

bench-p1: venv binaries
	@$(BIN)/python -m bench.p1_latency $(BENCH_ARGS)

bench-p2: venv binaries
	@$(BIN)/python -m bench.p2_token_calls $(BENCH_ARGS)

bench-p3: venv binaries
	@$(BIN)/python -m bench.p3_scale $(BENCH_ARGS)

bench-p4: venv binaries
	@$(BIN)/python -m bench.p4_restart $(BENCH_ARGS)

bench-p5: venv binaries
	@$(BIN)/python -m bench.p5_storm $(BENCH_ARGS)

bench-p6: venv binaries
	@$(BIN)/python -m bench.p6_fairness $(BENCH_ARGS)

bench: venv binaries
	@$(BIN)/python -m bench

# 72 h of renewals, time-compressed, under AWS faults, API server restarts and operator SIGKILLs.
soak: venv binaries
	ECR_SOAK=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/soak $(PYTEST_ARGS)
