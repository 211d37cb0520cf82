#!/usr/bin/env bash
# gpucheck.sh OUT FFMPEG_PREFIX: builds the cuda test+benchmark binary of
# package gpu (needs CGO_CFLAGS/CGO_LDFLAGS pointing at cuda.h and the
# libcuda stub: the Makefile's CUDA_ENV) and gathers it with the shared
# libraries it needs (FFmpeg from FFMPEG_PREFIX, libx264, libvpx, libopus
# and whatever else ldd resolves outside glibc; never libcuda, which comes
# from the GPU host's driver) into OUT, with OUT/run.sh. `make gpu-check`
# runs it.
set -euo pipefail
out=$1
prefix=$2
max=$((64 * 1024 * 1024))

rm -rf "$out"
mkdir -p "$out/lib"
go test -c -tags cuda -ldflags='-s -w' -o "$out/gpu.test" ./gpu

# Every shared library the binary resolves, except glibc's own and the
# CUDA driver.
ldd "$out/gpu.test" | awk '/=> \// {print $1, $3}' | while read -r name path; do
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
# Runs package gpu's CUDA tests and benchmarks on a host with an NVIDIA
# driver. Results also go to $OUT/gpu-check.txt when $OUT is set.
dir=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$dir"
log=${OUT:-$dir}/gpu-check.txt
{
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
	./gpu.test -test.v -test.count=1 -test.timeout=8m -test.bench=. -test.benchmem -test.benchtime=2s "$@"
	echo "exit status $?"
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
echo "gpu-check: $rel ($((size / 1024 / 1024)) MiB: gpu.test + $(ls "$out/lib" | wc -l) libraries + run.sh)"
echo "run on a GPU host, from the repository root:"
echo "  $rel/run.sh            # device tool: run(command=\"$rel/run.sh\", carry=[\"$rel\"], timeout_s=600)"
