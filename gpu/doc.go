// Package gpu owns Framewire's CUDA resources: one goroutine per device,
// locked to its OS thread, holding the device's primary context (shared
// with FFmpeg's CUDA hardware device context, created on that thread with
// AV_CUDA_USE_CURRENT_CONTEXT), device and pinned host buffers, and the
// colour-conversion kernels.
//
// # Pieces
//
//   - Device (Open): the context owner. Set-up calls (allocations, the
//     kernels' module, FFmpeg's device context, opening encoders and
//     decoders, the NVENC and NVDEC probes) run on its goroutine; Do runs a
//     function there and returns its own error; Close closes everything
//     still open on the device, drains and waits. Fault reports a sticky
//     fault that poisoned the context (below).
//   - Threads and streams per session: each Encoder and each Decoder makes
//     its per-frame CUDA calls on an OS thread of its own (the context
//     current) and on a non-blocking stream of its own, so no session's
//     frames wait behind another's device work or synchronisation. Each
//     Decoder also has an FFmpeg CUDA device context on its stream, so
//     NVDEC maps its pictures there, not on the legacy default stream;
//     EncodeRGB uploads on a stream of its own. Nothing per frame touches
//     the legacy stream, which orders with everyone's work.
//   - Frame: pictures in someone else's device memory (a raw CUdeviceptr as
//     a uintptr, pitch, size, RGB24 or RGBA, a batch of N at a stride) plus
//     the CUstream or CUevent that orders the producer's writes. It has the
//     method set of tracks.DeviceFrame. See Frame for when the memory may be
//     reused.
//   - Encoder (NewEncoder): device frames to H.264. Probing picks
//     BackendNVENC (the kernel writes NV12 straight into a CUDA frame of
//     FFmpeg's pool; h264_nvenc encodes it; no host memory per frame) where
//     h264_nvenc opens on a CUDA frames context, else BackendX264 (kernel
//     → NV12 on the device → async copy into pinned memory → libx264 with
//     NV12 input, optionally pipelined so the copy of frame n+1 overlaps
//     the encode of frame n). When neither opens the caller encodes on the
//     CPU (BackendCPU). The choice is logged and reported by Backend.
//     On a GPU without NVENC (H100, H200, A100: the driver's
//     libnvidia-encode.so.1 is present and refuses the session) the
//     verdict is found once per Device, with FFmpeg's reason captured
//     (encode.CaptureFFmpegLog) and logged once at INFO, never as
//     FFmpeg's ERROR line; later tracks go straight to libx264.
//   - Decoder (NewDecoder): H.264 through NVDEC into CUDA NV12 frames →
//     kernel → RGB24 on the device (the device-side latest picture,
//     LatestDevice) → async copy into a pinned double buffer (Latest).
//   - Buffer, Pinned: device memory and page-locked host memory owned by
//     this package.
//
// # Waiting without spinning
//
// Open sets CU_CTX_SCHED_BLOCKING_SYNC on the primary context before it
// retains it (cuDevicePrimaryCtxSetFlags), keeping the other flag bits:
// every wait in the context (synchronous copies, stream and event
// synchronisation, FFmpeg's NVDEC and NVENC calls) then blocks the thread
// instead of spinning a core, which on a GPU without NVENC is a core
// libx264 needs. If a model's CUDA runtime made the context active first,
// its flags are the model's and are left alone; our own waits still block:
// every event of this package is created with CU_EVENT_BLOCKING_SYNC and a
// stream is synchronised by recording one and waiting on it, never with
// cuStreamSynchronize. Device.BlockingSync reports which case holds.
//
// # One bad pointer
//
// The primary context is shared by every session and by the model's own
// CUDA work, and a fault in it is sticky: after an illegal address every
// call in the context fails until it is destroyed. So before a kernel
// reads a Frame (or LatestDevice writes one) the driver is asked
// (cuPointerGetAttributes) whether every byte of the picture lies in one
// allocation of this device's primary context; a frame that fails is
// refused with ErrBadFrame saying why, and only its session sees the
// error. A sticky fault that happens anyway (memory freed after the check,
// the model's own kernel) poisons the Device: Device.Fault reports it
// (wrapping ErrDeviceFault), every encoder, decoder and allocation refuses
// with that reason, and a server reports itself not ready (cmd/framewire:
// /readyz of a node, /health locally; metric framewire_gpu_device_poisoned)
// so it is drained and replaced.
//
// Colour: BT.709, limited range, both directions (kernels/kernels.cu).
// The kernels are compiled to PTX with clang-14 (`go generate ./gpu`),
// committed, embedded and loaded with cuModuleLoadData: building needs no
// CUDA compiler, and ptx_test.go checks the committed PTX matches its
// source. Kernel launches go through a small C shim (shim_cuda.c) with
// exact 8-byte parameters and no per-launch allocation; the shim also
// provides pinned memory, streams and events, which gorgonia.org/cu lacks.
//
// # Builds
//
// With the cuda build tag the package uses gorgonia.org/cu and the driver
// API; a CUDA driver must be present (the cu package exits the process at
// init without one). Without the tag the same API exists, Open,
// NewEncoder and NewDecoder return ErrNoCUDA, and the default build and
// its tests run on any machine. `make check-cuda` compiles and vets the
// cuda build without a GPU; `make test-cuda-emu` runs its tests against
// the emulated driver of gpu/cudaemu (a test instrument, never a
// performance figure; it refuses NVENC sessions like an H100's driver,
// waits as the context's scheduling flags say and counts spinning waits,
// checks every kernel's whole footprint and turns a bad one into a sticky
// illegal-address fault; EmulatorStat reads its counters); `make
// gpu-check` packages the cuda tests, the CPU-spin measurement, the
// benchmarks and a sanitizer pass for a GPU host (gpucheck-run.sh, every
// result into one folder, within 8 minutes).
//
// # In an engine
//
// An Encoder is the engine pipeline's device encoder as it is (it has the
// methods of pipeline.DeviceEncoder and DeviceBatchEncoder; DeviceFrame is
// tracks.DeviceFrame): EncoderFactory(d, log) makes one per output track,
// opening at the track's first frame, and DecoderFactory(d) makes the
// NVDEC decoders of inbound H.264 (an error wrapping ErrUnavailable means:
// decode on the CPU). Errors and backends are package encode's vocabulary
// (ErrShortBuffer is encode.ErrShortBuffer and wraps io.ErrShortBuffer;
// Backend values are encode.Backend).
package gpu
