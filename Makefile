# sdsops — build, test and run locally. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
# Fuzz targets run briefly by `make test`: package:target:budget. The budget is a number of
# calls (-fuzztime Nx), about what 5 s explored on a busy 2-core machine: a duration would race
# Go 1.26's fuzzing coordinator at its deadline and fail under load with nothing found
# (golang/go#75804). FUZZTIME (e.g. `make fuzz FUZZTIME=1m`) replaces every budget.
FUZZ_TARGETS := ./internal/sds:FuzzDecoders:50000x ./internal/sds:FuzzValidate:34000x \
  ./internal/dataset:FuzzLenientVerifier:32000x ./internal/task:FuzzEvents:14000x \
  ./internal/dataset:FuzzVerifier:68000x ./internal/geojson:FuzzConvert:15000x \
  ./internal/query:FuzzParse:120000x ./internal/queryapi:FuzzHandler:50000x \
  ./internal/wkt:FuzzConvert:60000x
FUZZTIME ?=
# Lambda binaries: provided.al2023 on arm64, no RPC, stripped.
LAMBDA_BUILD := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"
# The functions: one main package per directory under functions/.
FUNCTIONS := $(notdir $(patsubst %/,%,$(dir $(wildcard functions/*/*.go))))
FUNCTIONS := $(sort $(FUNCTIONS))

# Python tools (moto, cfn-lint, aws-sam-translator, SAM CLI, AWS CLI, pyogrio with GDAL) at the versions pinned in
# requirements-dev.txt. When the interpreter SDSOPS_PYTHON (default python3) has exactly those,
# they are used; otherwise a project .venv is built from PyPI on first use (the `tools` target)
# and used instead. Either way their directory goes first on PATH and SDSOPS_PYTHON names the
# interpreter, for every target and for the tests (which run moto and the translator with it).
REQUIREMENTS := requirements-dev.txt
VENV := .venv
VENV_BASE_PYTHON ?= python3
SDSOPS_PYTHON ?= python3
ifndef SDSOPS_TOOLS_BIN
  PINNED := $(shell $(SDSOPS_PYTHON) .ci/pins.py $(REQUIREMENTS) 2>/dev/null)
  ifeq ($(words $(PINNED)),2)
    SDSOPS_TOOLS_BIN := $(word 1,$(PINNED))
    SDSOPS_PYTHON := $(word 2,$(PINNED))
  else
    SDSOPS_TOOLS_BIN := $(CURDIR)/$(VENV)/bin
    SDSOPS_PYTHON := $(SDSOPS_TOOLS_BIN)/python
    TOOLS_STAMP := $(VENV)/.installed
  endif
  export PATH := $(SDSOPS_TOOLS_BIN):$(PATH)
endif
export SDSOPS_TOOLS_BIN SDSOPS_PYTHON
# SAM CLI: no telemetry (and no waiting on a network that may not reach it).
export SAM_CLI_TELEMETRY := 0

.PHONY: help tools run up test unit norace lint sam fuzz emulator build bench bench-nightly clean

help:
	@echo "make run       back up the sample data source locally: emulator, moto, real state machine and functions"
	@echo "make up        the same local stack, kept up until Ctrl-C, for the aws CLI (prints the environment)"
	@echo "make test      lint, unit and integration tests (race detector), sam validate and sam build, brief fuzzing"
	@echo "make lint      gofmt, go vet, staticcheck, cfn-lint template.yaml, asl-validator statemachine/*.asl.json"
	@echo "make sam       sam validate --lint and sam build; checks each function's arm64 bootstrap"
	@echo "make fuzz      run each fuzz target for its budget of calls (FUZZTIME=1m: for a time instead)"
	@echo "make emulator  run the SDS emulator on a free port with the embedded sample account"
	@echo "make build     the arm64 bootstrap binaries under bin/, with their sizes"
	@echo "make bench     benchmarks: 300 MB copy to S3 (MB/s, peak heap), cold starts, decoders"
	@echo "make bench-nightly  the nightly run over a 200-data-source account, several nights, in moto"
	@echo "make tools     the pinned Python tools: $(SDSOPS_TOOLS_BIN)"

# tools: nothing to do when SDSOPS_PYTHON already has the pins; else (re)build .venv when it
# is missing or older than the requirements.
tools: $(TOOLS_STAMP)

$(VENV)/.installed: $(REQUIREMENTS)
	@echo "installing the pinned Python tools into $(VENV) ($(REQUIREMENTS))"
	@test -x $(VENV)/bin/python || $(VENV_BASE_PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "cannot create $(VENV) with $(VENV_BASE_PYTHON) -m venv: install Python 3 with venv and pip (Debian: apt-get install python3-venv python3-pip)"; exit 1; }
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet --requirement $(REQUIREMENTS)
	@$(VENV)/bin/python .ci/pins.py $(REQUIREMENTS) >/dev/null
	@touch $@

test: lint unit sam fuzz

# Tests that skip under the race detector (it makes them take minutes) run again without it,
# and must have run: package:test pairs.
NORACE_TESTS := ./internal/sdsemu:TestGenerated200kIsWellFormed

unit: tools
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory norace

norace:
	@set -e; for t in $(NORACE_TESTS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "$(GO) test -count=1 -run '^$$name\$$' $$pkg (without -race)"; \
	  out=$$($(GO) test -count=1 -v -run "^$$name\$$" $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
	  grep -q -- "^--- PASS: $$name " <<< "$$out" || { echo "$$out"; echo "$$name did not run"; exit 1; }; \
	  grep -- "^--- PASS: $$name \|^ok" <<< "$$out"; \
	done

# lint: tools and inputs. staticcheck is pinned by go.mod's tool directive. asl-validator is
# pinned in .ci/package-lock.json and installed (npm ci) only when missing or older than the
# lock. ASL files are validated from a temporary copy with every ${Placeholder} replaced by a
# sample Lambda ARN, as DefinitionSubstitutions would at deploy time.
CFN_LINT ?= cfn-lint
NPM ?= npm
ASL_VALIDATOR := .ci/node_modules/.bin/asl-validator
ASL_FILES ?= $(wildcard statemachine/*.asl.json)
ASL_SAMPLE_ARN := arn:aws:lambda:us-east-1:123456789012:function:

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(CFN_LINT) template.yaml
	@if [ -z "$$(find $(ASL_VALIDATOR) -newer .ci/package-lock.json 2>/dev/null)" ]; then \
	  command -v $(NPM) >/dev/null || { echo "npm not found: install Node.js 20.19 or later with npm (asl-validator runs on it)"; exit 1; }; \
	  echo "$(NPM) ci --prefix .ci"; $(NPM) ci --prefix .ci --no-audit --no-fund --loglevel=error; \
	fi
	@if [ -z "$(strip $(ASL_FILES))" ]; then echo "asl-validator: no statemachine/*.asl.json"; exit 0; fi; \
	  tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; args=; \
	  for f in $(ASL_FILES); do \
	    b=$$(basename $$f); \
	    sed -E 's/\$$\{([A-Za-z0-9_]+)Arn\}/$(ASL_SAMPLE_ARN)\1/g; s/\$$\{([A-Za-z0-9_]+)\}/$(ASL_SAMPLE_ARN)\1/g' $$f > $$tmp/$$b || exit 1; \
	    args="$$args --json-path $$b"; \
	  done; \
	  echo "asl-validator$$args"; \
	  cd $$tmp && $(CURDIR)/$(ASL_VALIDATOR) $$args

# fuzz: a finding fails the step, and so does any new file under a testdata/fuzz directory
# (the reproducer go test writes when it finds one), whatever go test's status.
fuzz:
	@set -e; corpus() { find . -path ./.venv -prune -o -path ./.ci/node_modules -prune -o -path '*/testdata/fuzz/*' -type f -print | sort; }; \
	before=$$(corpus); \
	for t in $(FUZZ_TARGETS); do \
	  IFS=: read -r pkg name budget <<< "$$t"; budget=$(or $(FUZZTIME),$$budget); \
	  echo "fuzz $$pkg $$name ($$budget)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget $$pkg; \
	  new=$$(comm -13 <(echo "$$before") <(corpus)); \
	  if [ -n "$$new" ]; then echo "fuzz $$name wrote a failing input:"; echo "$$new"; exit 1; fi; \
	done

# sam validate --lint and sam build (BuildMethod: makefile, in the source tree, no container:
# samconfig.toml); then every function of the template must have come out as an arm64
# bootstrap under SAM_MAX_MIB.
SAM_MAX_MIB := 15
sam: tools
	sam validate --lint
	sam build
	$(SDSOPS_PYTHON) .ci/sam_artifacts.py template.yaml .aws-sam/build $(SAM_MAX_MIB)

run: tools
	$(GO) run ./internal/localrun/cmd/localrun $(RUN_ARGS)

# up: the local stack until Ctrl-C; it prints the environment for the aws CLI. Built rather
# than `go run`, so that Ctrl-C reaches it directly.
up: tools
	$(GO) build -o bin/localup ./internal/localrun/cmd/localup
	bin/localup $(UP_ARGS)

emulator:
	$(GO) run ./internal/sdsemu/cmd/sdsemu

build:
	@set -e; for f in $(FUNCTIONS); do $(LAMBDA_BUILD) -o bin/$$f/bootstrap ./functions/$$f; done
	@ls -l bin/*/bootstrap | awk '{printf "%-28s %6.1f MiB\n", $$9, $$5/1048576}'

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set: the
# function <Name>Function is built from functions/<name> (lower case).
build-%Function:
	@d=functions/$$(tr '[:upper:]' '[:lower:]' <<< '$*'); test -d $$d || { echo "$@: no $$d for $*Function"; exit 1; }; \
	  echo "build-$*Function: ./$$d -> $(ARTIFACTS_DIR)/bootstrap (linux/arm64)"; \
	  $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./$$d

bench: tools build
	$(GO) test -run '^$$' -bench . -benchtime 1x -benchmem ./internal/archive/ ./internal/task/ ./internal/dataset/ ./internal/geojson/ ./internal/geoparquet/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/sds/ ./internal/wkt/
	$(GO) test -run '^$$' -bench 'Query$$' -benchtime 1000x ./internal/query/
	$(GO) test -run '^$$' -bench 'VersusDuckDB|Load' -benchtime 1x ./internal/query/
	$(GO) test -run '^$$' -bench FirstAnswer -benchtime 1x ./internal/queryarchive/

# bench-nightly: minutes of nested executions in moto; prints a line per night.
bench-nightly: tools
	$(GO) test -run '^$$' -bench BenchmarkNightly200 -benchtime 1x -timeout 60m ./statemachine/accounttest/

# clean leaves .venv and .ci/node_modules (the pinned tools) in place.
clean:
	rm -rf bin .aws-sam
