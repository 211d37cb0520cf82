#!/usr/bin/env bash
# gpucheck.sh OUT FFMPEG_PREFIX: builds the cuda test+benchmark binary of
# package gpu and the cuda test binary of cmd/framewire (the engine path:
# device batches through the engine to the wire) (needs CGO_CFLAGS/
# CGO_LDFLAGS pointing at cuda.h and the libcuda stub: the Makefile's
# CUDA_ENV) and gathers them with the shared libraries they need (FFmpeg
# from FFMPEG_PREFIX, libx264, libvpx, libopus and whatever else ldd
# resolves outside glibc; never libcuda, which comes from the GPU host's
# driver) into OUT, with OUT/run.sh. `make gpu-check` runs it.
set -euo pipefail
out=$1
prefix=$2
max=$((64 * 1024 * 1024))

rm -rf "$out"
mkdir -p "$out/lib"
go test -c -tags cuda -ldflags='-s -w' -o "$out/gpu.test" ./gpu
go test -c -tags cuda -ldflags='-s -w' -o "$out/framewire.test" ./cmd/framewire

# Every shared library the binaries resolve, except glibc's own and the
# CUDA driver.
ldd "$out/gpu.test" "$out/framewire.test" | awk '/=> \// {print $1, $3}' | sort -u | while read -r name path; do
	case $name in
	libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libcuda.so*) continue ;;
	esac
	cp -L "$path" "$out/lib/$name"
done
for want in libavcodec libavutil libx264 libvpx libopus; do
	ls "$out/lib/$want".so* >/dev/null 2>&1 || { echo "gpucheck: $want was not resolved by ldd; is $prefix/lib on the rpath?" >&2; exit 1; }
done

cat >"$out/run.sh" <<'RUN'
#!/bin/sh
# Prints the host's driver, GPU and NVENC/NVDEC libraries, then runs
# package gpu's CUDA tests and benchmarks and the engine path
# (cmd/framewire's device-batch test) on a host with an NVIDIA driver.
# Results also go to $OUT/gpu-check.txt when $OUT is set.
dir=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$dir"
log=${OUT:-$dir}/gpu-check.txt
lib() { # lib NAME: where the dynamic loader finds NAME, or "missing"
	p=$(ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n {print $NF; exit}')
	echo "$1: ${p:-missing}"
}
{
	date -u
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "nvidia-smi: not available"
	lib libcuda.so.1
	lib libnvidia-encode.so.1 # NVENC (absent on H100/H200/A100 hosts is normal: no NVENC there)
	lib libnvcuvid.so.1       # NVDEC
	status=0
	./gpu.test -test.v -test.count=1 -test.timeout=8m -test.bench=. -test.benchmem -test.benchtime=2s "$@" || status=1
	# The engine path: a model's device batches through the engine.
	(cd "$dir" && ./framewire.test -test.v -test.count=1 -test.timeout=2m -test.run 'TestDeviceFrames') || status=1
	echo "exit status $status"
} 2>&1 | grep -v '^\[libx264 @' | tee "$log"
grep -q '^exit status 0$' "$log"
RUN
chmod +x "$out/run.sh"

size=$(du -sb "$out" | cut -f1)
if [ "$size" -ge "$max" ]; then
	echo "gpucheck: $out is $size bytes, over the 64 MiB a device run carries" >&2
	exit 1
fi
rel=${out#"$(pwd)"/}
echo "gpu-check: $rel ($((size / 1024 / 1024)) MiB: gpu.test, framewire.test + $(ls "$out/lib" | wc -l) libraries + run.sh)"
echo "run on a GPU host, from the repository root:"
echo "  $rel/run.sh            # device tool: run(command=\"$rel/run.sh\", carry=[\"$rel\"], timeout_s=600)"
