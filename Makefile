# Framewire: every target installs and builds what it needs first (Debian
# packages, FFmpeg 7.1.5 into build/ffmpeg, CUDA headers into build/cuda),
# each step stamped so that a rerun is a no-op.

SHELL := /bin/bash
BUILD := $(CURDIR)/build
PREFIX := $(BUILD)/ffmpeg
CUDA_DIR := $(BUILD)/cuda
# The FFmpeg build's stamp, named by .ci/deps.sh's FFMPEG_VERSION and
# FFMPEG_CONFIG (one place to bump).
deps_var = $(shell sed -n 's/^$(1)=//p' .ci/deps.sh)
FFMPEG_STAMP := $(PREFIX)/.stamp-$(call deps_var,FFMPEG_VERSION)-$(call deps_var,FFMPEG_CONFIG)
CUDA_STAMP := $(CUDA_DIR)/.stamp
CUDAEMU_DIR := $(BUILD)/cudaemu
CUDAEMU := $(CUDAEMU_DIR)/libcuda.so.1
CUDAEMU_SRC := $(wildcard gpu/cudaemu/*.c gpu/cudaemu/*.cc gpu/cudaemu/*.h gpu/cudaemu/*.sh) gpu/kernels/kernels.cu gpu/kernels/fw_cuda.h

export PATH := /usr/local/go/bin:$(PATH)
export PKG_CONFIG_PATH := $(PREFIX)/lib/pkgconfig
export CGO_LDFLAGS := -Wl,-rpath,$(PREFIX)/lib
export BUILD

CUDA_ENV := CGO_CFLAGS="-I$(CUDA_DIR)/include" CGO_LDFLAGS="$(CGO_LDFLAGS) -L$(CUDA_DIR)/lib"

GO_TEST_FLAGS ?= -count=1 -timeout 20m
# Loopback only; `make run ADDR=:8080` listens on every interface (then list
# the pages that may use it: go run ./cmd/framewire -addr :8080 -allow-origin https://app.example.com).
ADDR ?= 127.0.0.1:8080

.PHONY: cluster cluster-test redis page all deps run test test-go race fuzz leak check-cuda cudaemu test-cuda-emu gpu-check bench vet clean web screenshot python python-deps test-python wheel facevideo

all: deps
	go build ./...

$(FFMPEG_STAMP):
	.ci/deps.sh ffmpeg

$(CUDA_STAMP):
	.ci/deps.sh cuda

deps: $(FFMPEG_STAMP)
	@.ci/deps.sh apt

## run: build what is missing and serve the demo model and its page on $(ADDR).
run: deps page
	go run ./cmd/framewire -addr $(ADDR)

## redis: Debian's redis-server (production-mode tests and the cluster).
redis:
	@.ci/deps.sh redis

## cluster: production mode on this host: Redis + 2 fronts (:8090, :8091) +
## 3 engine nodes (:8100-:8102) as local processes, until Ctrl-C; binaries,
## keys and logs in $(CLUSTER_DIR). The nodes serve the demo model, or a
## Python model: make cluster PY_MODEL=path/model.py MODEL=<its name>.
CLUSTER_DIR ?= $(BUILD)/cluster
cluster: deps redis $(if $(PY_MODEL),python)
	go build -o $(CLUSTER_DIR)/bin/framewire ./cmd/framewire
	go build -o $(CLUSTER_DIR)/bin/front ./cmd/front
	BIN=$(CLUSTER_DIR)/bin DIR=$(CLUSTER_DIR) $(if $(PY_MODEL),PYTHONPATH=$(CURDIR)/$(PYDIR) NODE_CMD="$(PY) -m framewire serve $(abspath $(PY_MODEL))" MODEL=$(MODEL)) cmd/front/cluster.sh

## cluster-test: the fault tests on a local cluster of processes (kill -9 of
## a node and of a front, SIGTERM drain, all nodes full, bad tokens).
cluster-test: deps redis
	FRAMEWIRE_CLUSTER=1 go test -count=1 -run '^TestCluster' -v ./cmd/front/

## test: build what is missing and run every test: the race detector, a
## time-boxed fuzz of every target, the CUDA compile check and the cuda
## tests against the emulated driver included.
test: deps vet test-go race fuzz check-cuda test-cuda-emu bench-gate test-python

vet: deps
	go vet ./...
	CGO_ENABLED=0 go build ./tracks ./engine
	@if go list -deps ./engine ./tracks | grep -q go-astiav; then echo "engine or tracks depends on go-astiav (they must build without cgo)"; exit 1; fi

test-go: deps web redis python facevideo $(CUDAEMU)
	FRAMEWIRE_E2E=1 go test $(GO_TEST_FLAGS) ./...

## race: the tests of every package that starts goroutines (its own or
## through engine.Session.Go) under the race detector (the browser tests are
## left to test-go; the cuda packages' to test-cuda-emu).
RACE_PKGS := ./engine ./engine/protocol ./engine/peer ./engine/pipeline ./engine/wiring ./tracks \
	./engine/metrics ./engine/host ./engine/httpserve ./engine/enginetest/... \
	./engine/cluster/... ./cmd/front ./cmd/framewire
race: deps redis
	go test -race -p 1 $(GO_TEST_FLAGS) $(RACE_PKGS)

## fuzz: every fuzz target of the module under -fuzz for FUZZTIME each.
FUZZTIME ?= 5s
fuzz: deps
	.ci/fuzz.sh $(FUZZTIME)

## leak: LEAK_CYCLES (100) connect → stream → leave cycles against the real
## binary, rotating clean stop, abrupt close, vanished client and kill -9 of
## a client process; prints the resource table. make test runs 8 cycles.
LEAK_CYCLES ?= 100
leak: deps
	FRAMEWIRE_LEAK_CYCLES=$(LEAK_CYCLES) go test -count=1 -timeout 60m -run '^TestLeakCycles$$' -v ./cmd/framewire/

## facevideo: the face video the demo's tests play as the webcam
## (build/testdata/megamind.y4m: Debian opencv-doc's Megamind.avi turned
## into Y4M once by an ffmpeg program built from our FFmpeg's source).
facevideo: deps
	.ci/deps.sh facevideo

## page: Node, the pinned npm packages (package-lock.json) and the esbuild
## bundle of the demo page (cmd/framewire/web/dist, served by the binary).
WEB := cmd/framewire/web
page:
	.ci/deps.sh node
	@if [ ! -f $(WEB)/node_modules/.stamp ] || [ $(WEB)/package-lock.json -nt $(WEB)/node_modules/.stamp ]; then \
		cd $(WEB) && npm ci --no-audit --no-fund && touch node_modules/.stamp; fi
	cd $(WEB) && ./node_modules/.bin/esbuild app/index.jsx --bundle --minify --format=iife --target=chrome110 \
		--jsx=automatic --define:process.env.NODE_ENV='"production"' --outfile=dist/app.js --log-level=warning

## web: the page, plus Chromium and the bundle of the browser end-to-end
## harness (the real @reactor-team/js-sdk driven without React).
web: page
	.ci/deps.sh chromium
	cd $(WEB) && ./node_modules/.bin/esbuild e2e.js --bundle --format=iife --target=chrome110 \
		--define:process.env.NODE_ENV='"production"' --outfile=dist/e2e.bundle.js --log-level=warning

## check-cuda: build and vet every package with -tags cuda (no GPU needed).
check-cuda: deps $(CUDA_STAMP)
	$(CUDA_ENV) go build -tags cuda ./...
	$(CUDA_ENV) go vet -tags cuda ./...

## cudaemu: the emulated CUDA driver (gpu/cudaemu, build/cudaemu/libcuda.so.1):
## real checked memory, contexts, asynchronous streams, the kernels run on the
## CPU. A test instrument: never a performance figure.
cudaemu: $(CUDAEMU)

$(CUDAEMU): $(CUDAEMU_SRC) | $(CUDA_STAMP) $(FFMPEG_STAMP)
	gpu/cudaemu/build.sh $(CUDAEMU_DIR) $(CUDA_DIR)/lib/libcuda.so $(PREFIX)/include/ffnvcodec/dynlink_loader.h

## test-cuda-emu: the cuda build's tests of gpu/, engine/... and cmd/framewire
## against the emulated driver (no GPU needed).
test-cuda-emu: deps python $(CUDA_STAMP) $(CUDAEMU)
	$(CUDA_ENV) LD_LIBRARY_PATH=$(CUDAEMU_DIR) go test -tags cuda $(GO_TEST_FLAGS) ./gpu/... ./engine/... ./cmd/framewire/

## gpu-check: build the cuda test binaries (package gpu's tests and
## benchmarks, engine's, engine/pipeline's and cmd/framewire's device
## tests) with the libraries they need into build/gpu-check (under 64 MiB)
## and print the command that runs them on a GPU host: build/gpu-check/run.sh
## (gpu/gpucheck-run.sh: driver and GPU info, the whole cuda suite, the
## CPU-spin measurement, the device benchmarks and a compute-sanitizer pass
## where the host has it; every result into one folder, $$OUT or
## build/gpu-check/results; within 8 minutes).
gpu-check: deps $(CUDA_STAMP)
	$(CUDA_ENV) gpu/gpucheck.sh $(BUILD)/gpu-check $(PREFIX)

## bench: run the benchmarks and print the ratio table.
bench: deps python facevideo
	go test -run '^$$' -bench . -benchtime 2s ./bench/
	go test -run '^$$' -bench Recording720p30 -benchtime 300x ./engine/record/
	go test -run '^$$' -bench ForcedIDRBitrate -benchtime 1x ./engine/record/
	$(PY) $(PYDIR)/bench_emit.py

## bench-gate: fail when a hot path allocates per frame or runs below 0.85x
## its same-run go-astiav baseline (median of interleaved rounds), or when
## emit→sent p95 at 720p/30 fps to an in-process pion receiver exceeds the
## same round's bare encode p95 by more than 3 ms in each of five rounds
## (TestLatencyGate).
bench-gate: deps python
	go test -count=1 -run '^(TestGate|TestLatencyGate)$$' ./bench/ -gate
	$(PY) $(PYDIR)/bench_emit.py --gate 1.35

## screenshot: regenerate cmd/framewire/screenshot.png with the browser test of the page.
screenshot: deps web
	FRAMEWIRE_E2E=1 FRAMEWIRE_SCREENSHOT=$(CURDIR)/cmd/framewire/screenshot.png \
		go test -count=1 -run '^TestDemoPage$$' ./cmd/framewire/

clean:
	go clean -testcache

## python: the C ABI (cmd/libframewire, c-shared) and the `framewire` Python
## package over it: libframewire.so, the FFmpeg libraries it loads and the
## demo page go into the package (cmd/libframewire/python/framewire/_lib,
## web), and the wheel into build/python. The library finds its FFmpeg
## beside itself (rpath $ORIGIN), so the wheel works wherever it is
## installed; libx264, libvpx and libopus come from the system.
PYDIR := cmd/libframewire/python
PYPKG := $(PYDIR)/framewire
PYLIB := $(PYPKG)/_lib/libframewire.so
PYLIB_CUDA := $(PYPKG)/_lib/libframewire-cuda.so
PY := /usr/bin/python3
LIBFW_SRC := $(shell find cmd/libframewire engine tracks encode gpu -name '*.go' -not -name '*_test.go') cmd/libframewire/framewire_abi.h go.mod
WHEEL_VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' $(PYPKG)/__init__.py)
WHEEL = $(BUILD)/python/framewire-$(WHEEL_VERSION)-py3-none-linux_x86_64.whl

python: python-deps wheel

## wheel: the libraries, the page and the wheel only (what the CUDA image
## builds; needs Debian's python3, not the test packages).
wheel: deps page $(PYLIB) $(PYLIB_CUDA)
	mkdir -p $(PYPKG)/web && cp $(WEB)/dist/app.js $(PYPKG)/web/ && { cp $(WEB)/dist/app.css $(PYPKG)/web/ 2>/dev/null || true; }
	$(PY) $(PYDIR)/build_wheel.py $(BUILD)/python >/dev/null

python-deps:
	@.ci/deps.sh python

# The FFmpeg libraries are copied beside it afresh each time: the library's
# RPATH ($$ORIGIN) makes ldd resolve to copies already there, so stale ones
# (from an FFmpeg build before the last) would never be replaced.
$(PYLIB): $(LIBFW_SRC) $(FFMPEG_STAMP)
	mkdir -p $(PYPKG)/_lib
	rm -f $(PYPKG)/_lib/libav*.so.* $(PYPKG)/_lib/libsw*.so.* $(PYPKG)/_lib/libpostproc.so.*
	CGO_LDFLAGS='-Wl,--disable-new-dtags,-rpath,$$ORIGIN' go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o $@ ./cmd/libframewire
	rm -f $(PYPKG)/_lib/libframewire.h
	LD_LIBRARY_PATH=$(PREFIX)/lib ldd $@ | awk '$$3 ~ "^$(PREFIX)/" {print $$3}' | xargs -r -I{} cp -L {} $(PYPKG)/_lib/

# The cuda build of the library (device frames, NVENC, NVDEC): the package
# loads it instead where libcuda.so.1 loads and cuInit finds a device.
$(PYLIB_CUDA): $(LIBFW_SRC) $(PYLIB) | $(CUDA_STAMP)
	CGO_CFLAGS="-I$(CUDA_DIR)/include" CGO_LDFLAGS='-Wl,--disable-new-dtags,-rpath,$$ORIGIN -L$(CUDA_DIR)/lib' \
		go build -tags cuda -buildmode=c-shared -trimpath -ldflags='-s -w' -o $@ ./cmd/libframewire
	rm -f $(PYPKG)/_lib/libframewire-cuda.h

## test-python: the Python package's tests (pytest, Debian's interpreter;
## the face video is test_face_filter.py's); the browser tests of Python
## models are in cmd/framewire (test-go).
test-python: python facevideo
	cd $(PYDIR) && FRAMEWIRE_E2E=1 FRAMEWIRE_WHEEL_DIR=$(BUILD)/python $(PY) -m pytest -q -p no:cacheprovider tests
