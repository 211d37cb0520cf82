#!/bin/sh
# gen.sh OUT: compiles kernels.cu (beside this script) to sm_80 PTX with
# clang-14, no CUDA toolkit needed. The driver JIT-compiles sm_80 PTX for
# any newer GPU (Hopper H100/H200 included). `go generate ./gpu` runs it;
# gpu/ptx_test.go runs it again and checks the committed PTX matches.
set -eu
dir=$(dirname "$0")
out=${1:-$dir/kernels.ptx}
exec clang-14 -x cuda --cuda-device-only --cuda-gpu-arch=sm_80 -nocudainc -nocudalib \
	-O3 -ffp-contract=off -S -o "$out" "$dir/kernels.cu"
