# sdsops — build, test and run locally. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 5s
# Fuzz targets run briefly by `make test`: package:target pairs.
FUZZ_TARGETS := ./internal/sds:FuzzDecoders ./internal/sds:FuzzValidate

.PHONY: help test unit lint fuzz emulator clean

help:
	@echo "make test      lint, unit and integration tests (race detector), brief fuzzing"
	@echo "make lint      gofmt and go vet"
	@echo "make fuzz      run each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make emulator  run the SDS emulator on a free port with the embedded sample account"

test: lint unit fuzz

unit:
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

emulator:
	$(GO) run ./internal/sdsemu/cmd/sdsemu

clean:
	rm -rf bin .aws-sam
