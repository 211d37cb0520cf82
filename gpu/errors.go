package gpu

import "errors"

// ErrNoCUDA is returned by every constructor of a binary built without the
// cuda build tag. Rebuild with `go build -tags cuda` on a host with an
// NVIDIA driver to use device frames, NVENC zero-copy and NVDEC.
var ErrNoCUDA = errors.New("gpu: built without CUDA (rebuild with -tags cuda on a host with an NVIDIA driver)")
