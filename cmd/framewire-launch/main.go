// Command framewire-launch starts the Framewire server build this host can
// run, so one image serves on any host: the cuda build (framewire-cuda)
// where the CUDA driver loads and cuInit finds a device, else the CPU build
// (framewire-cpu), after logging why. The cuda build cannot decide this
// itself: it links libcuda.so.1, and gorgonia.org/cu calls cuInit in its
// package init and exits when it fails.
//
// Both builds sit beside the launcher. Arguments and environment pass
// through unchanged (the process is replaced with execve).
// FRAMEWIRE_BUILD=cpu or cuda forces a build; FRAMEWIRE_LAUNCH_DRYRUN=1
// prints the choice instead of starting it.
package main

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>

// fw_probe_cuda loads the CUDA driver the way the cuda build will and
// calls cuInit(0) and cuDeviceGetCount. It returns 0 when a device is
// usable, else writes why into why.
static int fw_probe_cuda(char *why, int n) {
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, n, "libcuda.so.1 does not load (%s): no NVIDIA driver here, or the container was started without --gpus", dlerror());
		return 1;
	}
	int (*init)(unsigned) = (int (*)(unsigned))dlsym(h, "cuInit");
	int (*count)(int *) = (int (*)(int *))dlsym(h, "cuDeviceGetCount");
	if (!init || !count) {
		snprintf(why, n, "libcuda.so.1 has no cuInit/cuDeviceGetCount");
		return 1;
	}
	int r = init(0);
	if (r != 0) {
		snprintf(why, n, "cuInit failed with CUresult %d (100: no CUDA-capable device)", r);
		return 1;
	}
	int devices = 0;
	if ((r = count(&devices)) != 0 || devices < 1) {
		snprintf(why, n, "the CUDA driver reports no device (cuDeviceGetCount: CUresult %d, %d devices)", r, devices);
		return 1;
	}
	return 0;
}
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// choose returns the build to start ("cuda" or "cpu") and why.
func choose() (build, why string) {
	switch f := os.Getenv("FRAMEWIRE_BUILD"); f {
	case "cpu", "cuda":
		return f, "FRAMEWIRE_BUILD=" + f
	case "":
	default:
		return "cpu", fmt.Sprintf("FRAMEWIRE_BUILD=%q is neither cpu nor cuda", f)
	}
	var buf [512]C.char
	if C.fw_probe_cuda(&buf[0], C.int(len(buf))) != 0 {
		return "cpu", C.GoString(&buf[0])
	}
	return "cuda", "cuInit succeeded and the driver reports a CUDA device"
}

func main() {
	build, why := choose()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "framewire-launch: %v\n", err)
		os.Exit(1)
	}
	target := filepath.Join(filepath.Dir(exe), "framewire-"+build)
	msg := fmt.Sprintf("framewire-launch: starting the %s build (%s): %s", build, target, why)
	if build == "cpu" {
		msg += "; device frames disabled, host frames encode on the CPU"
	}
	fmt.Fprintln(os.Stderr, msg)
	if os.Getenv("FRAMEWIRE_LAUNCH_DRYRUN") == "1" {
		fmt.Println(build)
		return
	}
	args := append([]string{target}, os.Args[1:]...)
	err = syscall.Exec(target, args, os.Environ())
	fmt.Fprintf(os.Stderr, "framewire-launch: exec %s: %v\n", target, err)
	os.Exit(1)
}
