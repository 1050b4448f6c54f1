# sdsops — build, test and run locally. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 5s
# Fuzz targets run briefly by `make test`: package:target pairs.
FUZZ_TARGETS := ./internal/sds:FuzzDecoders ./internal/sds:FuzzValidate ./internal/dataset:FuzzLenientVerifier ./internal/task:FuzzEvents \
  ./internal/dataset:FuzzVerifier ./internal/geojson:FuzzConvert
FUNCTIONS := startdownload checkstatus copytos3 delete setpublic
# Lambda binaries: provided.al2023 on arm64, no RPC, stripped.
LAMBDA_BUILD := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: help check-moto check-gdal run test unit lint fuzz emulator build bench clean

help:
	@echo "make run       back up the sample data source locally: emulator, moto, real state machine and functions"
	@echo "make test      lint, unit and integration tests (race detector), brief fuzzing"
	@echo "make lint      gofmt, go vet, cfn-lint template.yaml, asl-validator statemachine/*.asl.json"
	@echo "make fuzz      run each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make emulator  run the SDS emulator on a free port with the embedded sample account"
	@echo "make build     the five arm64 bootstrap binaries under bin/, with their sizes"
	@echo "make bench     benchmarks: 300 MB copy to S3 (MB/s, peak heap), cold starts, decoders"

test: lint unit fuzz

unit: check-moto check-gdal
	$(GO) test -race -count=1 ./...

# lint: tools and inputs. asl-validator is pinned in .ci/package-lock.json and
# installed (npm ci) only when missing or older than the lock. ASL files are
# validated from a temporary copy with every ${Placeholder} replaced by a sample
# Lambda ARN, as DefinitionSubstitutions would at deploy time.
CFN_LINT ?= cfn-lint
NPM ?= npm
ASL_VALIDATOR := .ci/node_modules/.bin/asl-validator
ASL_FILES ?= $(wildcard statemachine/*.asl.json)
ASL_SAMPLE_ARN := arn:aws:lambda:us-east-1:123456789012:function:

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v $(CFN_LINT) >/dev/null || { echo "cfn-lint not found: pip install cfn-lint"; exit 1; }
	$(CFN_LINT) template.yaml
	@if [ -z "$$(find $(ASL_VALIDATOR) -newer .ci/package-lock.json 2>/dev/null)" ]; then \
	  command -v $(NPM) >/dev/null || { echo "npm not found: install Node.js 20 with npm (asl-validator runs on it)"; exit 1; }; \
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

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# The GeoJSON tests have GDAL read what the conversion writes.
check-gdal:
	@command -v ogrinfo >/dev/null && command -v ogr2ogr >/dev/null || { echo 'GDAL is missing: apt-get install gdal-bin (Debian/Ubuntu), brew install gdal (macOS)'; exit 1; }

# Tests and the local run start moto_server themselves; it must be installed.
check-moto:
	@python3 -c 'import moto.server' 2>/dev/null || { echo 'moto is missing: pip install "moto[server]"'; exit 1; }

run: check-moto
	$(GO) run ./internal/localrun/cmd/localrun $(RUN_ARGS)

emulator:
	$(GO) run ./internal/sdsemu/cmd/sdsemu

build:
	@set -e; for f in $(FUNCTIONS); do $(LAMBDA_BUILD) -o bin/$$f/bootstrap ./functions/$$f; done
	@ls -l bin/*/bootstrap | awk '{printf "%-28s %6.1f MiB\n", $$9, $$5/1048576}'

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-StartDownloadFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/startdownload
build-CheckStatusFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/checkstatus
build-CopyToS3Function:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/copytos3
build-DeleteFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/delete
build-SetPublicFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/setpublic

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -benchmem ./internal/archive/ ./internal/task/ ./internal/dataset/ ./internal/geojson/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/sds/

clean:
	rm -rf bin .aws-sam
