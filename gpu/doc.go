// Package gpu owns Framewire's CUDA resources: one goroutine per device,
// locked to its OS thread, holding the device's primary context (shared
// with FFmpeg's CUDA hardware device context), device and pinned host
// buffers, and the colour-conversion kernels.
//
// The package is built two ways. With the cuda build tag it uses
// gorgonia.org/cu and the driver API (a CUDA driver must be present: the cu
// package exits the process at init without one). Without it, the same API
// exists and every constructor returns ErrNoCUDA, so the default build and
// its tests run on any machine.
package gpu
