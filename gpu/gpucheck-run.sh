#!/bin/bash
# gpucheck-run.sh: the script `make gpu-check` puts into its bundle as
# run.sh, for a host with an NVIDIA GPU and driver. From the bundle's
# folder it runs, each step under its own time limit so that the whole
# stays within 8 minutes:
#
#   info       driver, GPU, NVENC/NVDEC libraries, CPU cores    (<= 10 s)
#   tests      the whole cuda suite: package gpu, engine (device refusal),
#              engine/pipeline (a real gpu.Encoder), cmd/framewire (device
#              frames through the engine, three tracks, a bad
#              pointer, a poisoned device)                       (<= 200 s)
#   spin       the CPU-spin measurement: the waiting thread's CPU time
#              over its wait (TestWaitingCostsNoCPU), and the process's
#              CPU time over a 720p encode benchmark              (<= 35 s)
#   bench      the device benchmarks (kernel, copy to pinned, encode,
#              NVDEC), 1 s each                                   (<= 75 s)
#   sanitizer  compute-sanitizer memcheck over the kernel, encoder and
#              pointer-check tests, when the host has it (it ships with the
#              CUDA toolkit, not the driver)                     (<= 100 s)
#
# The limits add up to 420 s, 460 s with each step's 5 s kill grace.
#
# Every result goes to one folder, RESULTS (default: $OUT when set, the
# device tool's folder, else ./results): one file per step and summary.txt
# (step, exit status, seconds). It exits 0 when every step that ran passed.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
res=${RESULTS:-${OUT:-$dir/results}}
mkdir -p "$res"
export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$dir" || exit 1
summary=$res/summary.txt
: >"$summary"
status=0

# step NAME LIMIT_S CMD...: runs CMD under LIMIT_S into $res/NAME.txt
# (libx264's statistics filtered out) and records the outcome.
step() {
	local name=$1 limit=$2 t0 rc
	shift 2
	t0=$(date +%s)
	if declare -F "$1" >/dev/null; then # a function of this script: timeout runs programs
		set -- bash -c "$*"
	fi
	timeout -k 5 "$limit" "$@" 2>&1 | grep -v '^\[libx264 @' >"$res/$name.txt"
	rc=${PIPESTATUS[0]}
	printf '%-10s exit %-3s %4ss  %s\n' "$name" "$rc" "$(($(date +%s) - t0))" "$*" | tee -a "$summary"
	[ "$rc" -eq 0 ] || status=1
}

lib() { # lib NAME: where the dynamic loader finds NAME, or "missing"
	local p
	p=$(ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n {print $NF; exit}')
	echo "$1: ${p:-missing}"
}

info() {
	date -u
	nvidia-smi --query-gpu=name,driver_version,memory.total,compute_mode --format=csv 2>/dev/null || echo "nvidia-smi: not available"
	lib libcuda.so.1
	lib libnvidia-encode.so.1 # absent, or refusing every session, on H100/H200/A100: no NVENC there
	lib libnvcuvid.so.1       # NVDEC
	echo "cpu cores: $(nproc)"
	echo "bundle: $(ls "$dir")"
}

# spin: the waiting thread's CPU over its wait, then the process's CPU
# time (user+sys, from /proc) against wall time over the encode benchmark.
spin() {
	./gpu.test -test.v -test.count=1 -test.run '^TestWaitingCostsNoCPU$' || return 1
	local t0 t1 c0 c1 hz pid
	hz=$(getconf CLK_TCK)
	t0=$(date +%s%N)
	./gpu.test -test.run '^$' -test.bench '^BenchmarkEncode_720p$' -test.benchtime 300x -test.count=1 &
	pid=$!
	c1=0
	while kill -0 "$pid" 2>/dev/null; do
		c0=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) && c1=$c0
		sleep 0.2
	done
	wait "$pid" || return 1
	t1=$(date +%s%N)
	echo "process CPU over the 720p encode benchmark: $((c1 * 1000 / hz)) ms of CPU in $(((t1 - t0) / 1000000)) ms of wall (libx264 included)"
}

sanitizer() {
	local cs
	cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
	if [ -z "$cs" ]; then
		echo "compute-sanitizer not found (it ships with the CUDA toolkit, not the driver): sanitizer pass not run"
		return 0
	fi
	"$cs" --tool memcheck --leak-check full --error-exitcode 3 ./gpu.test -test.count=1 \
		-test.run '^(TestKernel|TestEncoderX264EndToEnd|TestBadFramePointerRefusedBeforeLaunch|TestEncodeRGB|TestNVDECRoundTrip)'
}

export dir res
export -f lib info spin sanitizer
step info 10 info
step gpu-tests 100 ./gpu.test -test.v -test.count=1 -test.timeout=95s
step engine-tests 25 ./engine.test -test.v -test.count=1 -test.timeout=20s -test.run 'Device|Refus'
step pipeline-tests 25 ./pipeline.test -test.v -test.count=1 -test.timeout=20s -test.run 'GPU|Device'
step framewire-tests 50 ./framewire.test -test.v -test.count=1 -test.timeout=45s -test.run '^(TestDeviceFramesThroughAdapter|TestThreeTracksOnGPUWithoutNVENC|TestBadPointerSessionDoesNotBreakOthers|TestPoisonedDeviceFailsReadiness)$'
step spin 35 spin
step bench 75 ./gpu.test -test.run '^$' -test.bench . -test.benchmem -test.benchtime 1s -test.count=1
step sanitizer 100 sanitizer
echo "results in $res; exit status $status" | tee -a "$summary"
exit $status
