# Myna Kyukyu field gateway. `make test` and `make run` are the two commands; see README.md.
SWIFT ?= swift
BIN_DIR = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
RELEASE_BIN_DIR = $(shell $(SWIFT) build -c release --show-bin-path 2>/dev/null)

.PHONY: deps build test browser-test run browser-check bench drill lint format clean package deploy-check package-test

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

## Build everything and run every test (unit, through real pcscd + simulator, OpenSC interop, onshi stub).
## One test at a time: on 2 cores, CPU-heavy suites (key generation, multi-MB XML) running beside the
## deadline tests would starve Swift's cooperative pool and make the deadlines, not the code, fail.
## All tests are Swift Testing, so XCTest's empty run is switched off.
## Then the tablet in a real headless browser against the real stack (Tests/browser: every scenario of issue 8, and
## the PHI-at-rest search); screenshots of each state go to state/screenshots/.
test: build
	rm -rf $(FHIR_DOCUMENTS)
	KYUKYU_FHIR_OUT=$(FHIR_DOCUMENTS) KYUKYU_BIN_DIR=$(BIN_DIR) $(SWIFT) test --no-parallel --disable-xctest
	$(FHIR_CHECK)
	$(DRILL_REPORT_TESTS)
	$(BROWSER_TESTS)
	$(MAKE) --no-print-directory api-contract
	$(DEPLOY_CHECKS)
	$(PACKAGE_TESTS)

## The drill report's renderer (scripts/drill-report.py, matplotlib in state/fhir-venv) against synthetic reports.
DRILL_REPORT_TESTS = KYUKYU_TOOLS_PYTHON=$(CURDIR)/state/fhir-venv/bin/python3 python3 -m pytest -p no:cacheprovider -q Tests/drill

## The browser tests alone (Debian's chromium + chromedriver via selenium, nothing downloaded; needs root for the
## stack's private pcscd). Ports from KYUKYU_BROWSER_PORT_BASE (default 20700). PYTEST_ARGS=-k card, for example.
browser-test: build
	$(BROWSER_TESTS)

BROWSER_TESTS = KYUKYU_BIN_DIR=$(BIN_DIR) SE_OFFLINE=true python3 -m pytest -p no:cacheprovider -rA -v Tests/browser $(PYTEST_ARGS)

## The API against its OpenAPI document (docs/gateway-api.yaml): check_spec.py, then a bounded schemathesis fuzz of
## the real gateway on a stack it starts and stops itself (Tests/api-contract/contract.sh; reports in state/).
.PHONY: api-contract
api-contract: build
	KYUKYU_BIN_DIR=$(BIN_DIR) Tests/api-contract/contract.sh

## The pre-arrival FHIR document checked by another implementation: the Swift test (IndependentCheckTests) writes every
## archetype's documents (with and without vitals, with categories missing) to state/fhir-documents, and
## Tests/fhir/validate.py checks them with fhir.resources 6.4.0 (R4) and the Bundle invariants in FHIRPath
## (fhirpathpy), in the venv that scripts/install-deps.sh makes (state/fhir-venv). The documents stay there for other
## tools. `make test` does the same from its one `swift test` run (the documents written there, then $(FHIR_CHECK)).
.PHONY: fhir-test
fhir-test: build
	rm -rf $(FHIR_DOCUMENTS)
	KYUKYU_FHIR_OUT=$(FHIR_DOCUMENTS) $(SWIFT) test --no-parallel --disable-xctest --filter IndependentCheckTests
	$(FHIR_CHECK)

FHIR_DOCUMENTS = $(CURDIR)/state/fhir-documents
FHIR_CHECK = state/fhir-venv/bin/python3 Tests/fhir/validate.py $(FHIR_DOCUMENTS)

## Deployment (docs/operations.md). `make package`: the .debs (myna-kyukyu, myna-kyukyu-drill) in state/package/ from
## PACKAGE_BIN_DIR (default: the release build, built first). `make deploy-check`: systemd-analyze verify and security
## (exposure <= 2.0) on deploy/systemd, promtool on deploy/prometheus. `make package-test`: the packages (of the debug
## build, as in `make test`) installed on a fresh debootstrapped Debian booted with systemd-nspawn, the units started
## (Tests/deploy; needs root; the Debian tree is cached in state/deploy/).
PACKAGE_BIN_DIR ?= $(RELEASE_BIN_DIR)
PACKAGE_COMPRESS ?= xz
PACKAGE_DIR = $(CURDIR)/state/package
package: deps
	@if [ "$(PACKAGE_BIN_DIR)" = "$(RELEASE_BIN_DIR)" ]; then $(SWIFT) build -c release; fi
	PACKAGE_COMPRESS=$(PACKAGE_COMPRESS) scripts/package.sh $(PACKAGE_BIN_DIR) $(PACKAGE_DIR)
deploy-check: deps
	$(DEPLOY_CHECKS)
package-test: build
	$(PACKAGE_TESTS)
DEPLOY_CHECKS = python3 -m pytest -p no:cacheprovider -q Tests/deploy/test_static.py
PACKAGE_TESTS = PACKAGE_COMPRESS=zstd scripts/package.sh $(BIN_DIR) $(PACKAGE_DIR) \
	&& KYUKYU_PACKAGE_DIR=$(PACKAGE_DIR) python3 -m pytest -p no:cacheprovider -rA -v Tests/deploy/test_install.py

## The product on this machine: a private pcscd, the card simulator with a synthetic patient, the onshi stub and
## the gateway with a demo crew (scripts/stack.sh); prints the tablet's URL and the sign-in, and a menu swaps what
## is on the reader. q or Ctrl-C stops everything. KYUKYU_DEMO_NONINTERACTIVE=1: start, check, print, stop.
run: build
	KYUKYU_BIN_DIR=$(BIN_DIR) scripts/demo.sh

## A small region (issue 12; docs/region.md): a private PostgreSQL, 3 hub instances behind HAProxy, 3 hospitals'
## boards and 2 ambulances (scripts/region.sh). `make run` stays one hospital on SQLite.
.PHONY: run-region
run-region: build
	KYUKYU_BIN_DIR=$(BIN_DIR) scripts/region.sh

## Checks that the browser tests' setup works here: Debian's headless chromium and chromedriver through selenium
## take a screenshot (state/browser-smoke.png); nothing is downloaded.
browser-check: deps
	scripts/browser-smoke.py state/browser-smoke.png

## Benchmarks (release build); figures go to docs/performance.md; kyukyu-load's HTML report to
## state/bench/load-report.html.
bench: deps
	$(SWIFT) build -c release
	KYUKYU_BIN_DIR=$(RELEASE_BIN_DIR) $(RELEASE_BIN_DIR)/kyukyu-bench all
	scripts/bench-gateway.py --bin-dir $(RELEASE_BIN_DIR)
	scripts/bench-load.py --bin-dir $(RELEASE_BIN_DIR)
	scripts/bench-region.py --bin-dir $(RELEASE_BIN_DIR)
	scripts/bench-tablets.py --bin-dir $(RELEASE_BIN_DIR)
	state/fhir-venv/bin/python3 scripts/load-report.py state/bench/load --out state/bench/load-report.html

## Drills (issue 10; docs/drills.md): the survey's failure mix (1,000 incidents), a quiet night and a mass-casualty
## incident, each a region of real processes (release build); reports (JSON and HTML) in state/drill/<scenario>/.
## DRILL_SCENARIOS=ci-small, for example; DRILL_ARGS=--incidents 200 for a shorter run of the same mix.
DRILL_SCENARIOS ?= survey-mix quiet-night mass-casualty
drill: deps
	$(SWIFT) build -c release
	@status=0; for s in $(DRILL_SCENARIOS); do \
	  $(RELEASE_BIN_DIR)/kyukyu-drill --scenario simulators/scenarios/$$s.json --out state/drill/$$s \
	    --bin-dir $(RELEASE_BIN_DIR) $(DRILL_ARGS) || status=$$?; \
	  state/fhir-venv/bin/python3 scripts/drill-report.py state/drill/$$s/report.json || status=$$?; \
	done; exit $$status

## libFuzzer harnesses of the parsers of hostile input (Tests/fuzz, built apart with -sanitize=fuzzer,address), each run
## for FUZZ_SECONDS (default 600) from a copy of its committed corpus; state/fuzz/ keeps the working corpus, logs and
## any crash input, and the target fails if a harness finds one (scripts/fuzz.sh, docs/fuzzing.md).
.PHONY: fuzz
fuzz:
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),600) scripts/fuzz.sh

lint:
	$(SWIFT) format lint --strict -r Sources Tests simulators Package.swift

format:
	$(SWIFT) format -i -r Sources Tests simulators Package.swift

clean:
	rm -rf .build state
