package gpu

// The kernels are compiled ahead of time to PTX, committed, embedded and
// loaded with cuModuleLoadData, so building needs no CUDA compiler.
// Regenerating needs clang-14 (Debian package clang-14); ptx_test.go
// checks that the committed PTX is what kernels/kernels.cu compiles to.
//go:generate sh kernels/gen.sh kernels/kernels.ptx

// The kernel entry points in kernels/kernels.ptx.
const (
	kernelRGBToNV12 = "fw_rgb_to_nv12"
	kernelNV12ToRGB = "fw_nv12_to_rgb"
)
