#!/usr/bin/env bash
# gpucheck.sh OUT FFMPEG_PREFIX: builds the cuda test+benchmark binary of
# package gpu and the cuda test binaries of engine, engine/pipeline and
# cmd/framewire (the engine path: device frames through the engine to the
# wire) (needs CGO_CFLAGS/
# CGO_LDFLAGS pointing at cuda.h and the libcuda stub: the Makefile's
# CUDA_ENV) and gathers them with the shared libraries they need (FFmpeg
# from FFMPEG_PREFIX, libx264, libvpx, libopus and whatever else ldd
# resolves outside glibc; never libcuda, which comes from the GPU host's
# driver) into OUT, with OUT/run.sh (gpucheck-run.sh: the whole cuda suite,
# the CPU-spin measurement, the device benchmarks and a sanitizer pass,
# every result into one folder, within 8 minutes). `make gpu-check` runs it.
set -euo pipefail
out=$1
prefix=$2
max=$((64 * 1024 * 1024))

rm -rf "$out"
mkdir -p "$out/lib"
go test -c -tags cuda -ldflags='-s -w' -o "$out/gpu.test" ./gpu
go test -c -tags cuda -ldflags='-s -w' -o "$out/engine.test" ./engine
go test -c -tags cuda -ldflags='-s -w' -o "$out/pipeline.test" ./engine/pipeline
go test -c -tags cuda -ldflags='-s -w' -o "$out/framewire.test" ./cmd/framewire

# Every shared library the binaries resolve, except glibc's own and the
# CUDA driver.
ldd "$out"/*.test | awk '/=> \// {print $1, $3}' | sort -u | while read -r name path; do
	case $name in
	libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libcuda.so*) continue ;;
	esac
	cp -L "$path" "$out/lib/$name"
done
for want in libavcodec libavutil libx264 libvpx libopus; do
	ls "$out/lib/$want".so* >/dev/null 2>&1 || { echo "gpucheck: $want was not resolved by ldd; is $prefix/lib on the rpath?" >&2; exit 1; }
done

cp "$(dirname "$0")/gpucheck-run.sh" "$out/run.sh"
chmod +x "$out/run.sh"

size=$(du -sb "$out" | cut -f1)
if [ "$size" -ge "$max" ]; then
	echo "gpucheck: $out is $size bytes, over the 64 MiB a device run carries" >&2
	exit 1
fi
rel=${out#"$(pwd)"/}
echo "gpu-check: $rel ($((size / 1024 / 1024)) MiB: gpu.test, engine.test, pipeline.test, framewire.test + $(ls "$out/lib" | wc -l) libraries + run.sh)"
echo "run on a GPU host, from the repository root:"
echo "  $rel/run.sh            # device tool: run(command=\"$rel/run.sh\", carry=[\"$rel\"], timeout_s=600)"
