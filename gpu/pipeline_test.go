package gpu_test

import (
	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/gpu"
)

// The library owns GPU support: an Encoder is the pipeline's device
// encoder as it is (no adapter), in both builds, and reports its backend
// in the codec vocabulary the pipeline reads.
var (
	_ pipeline.DeviceBatchEncoder           = (*gpu.Encoder)(nil)
	_ pipeline.HostDeviceEncoder            = (*gpu.Encoder)(nil)
	_ interface{ Backend() encode.Backend } = (*gpu.Encoder)(nil)
	_ pipeline.RGBDecoder                   = (*gpu.Decoder)(nil)
)
