package metrics

import "github.com/prometheus/client_golang/prometheus"

// DeviceFaultGauge returns the gauge framewire_gpu_device_poisoned: 1 while
// fault reports an error (a GPU whose CUDA context a sticky fault poisoned:
// gpu.Device.Fault), else 0. Register it beside Collector where a device is
// open, and alert on it: the process must be replaced (its /readyz fails).
func DeviceFaultGauge(fault func() error) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "framewire_gpu_device_poisoned",
		Help: "1 while the GPU's CUDA context is poisoned by a sticky fault (an illegal address); device frames are refused and the process must be replaced.",
	}, func() float64 {
		if fault() != nil {
			return 1
		}
		return 0
	})
}
