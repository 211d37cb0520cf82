package httpserve

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Meter counts a server's connections. Make one before the server when
// its /metrics should include them (Config.Meter, Collectors); its
// methods are safe for concurrent use.
type Meter struct {
	open, refused, evicted, overCap atomic.Int64
}

// Stats counts the connections a server holds and has refused, evicted
// and served over the cap.
type Stats struct {
	Open     int64 // held now
	Refused  int64 // closed at accept with a 503
	Evicted  int64 // idle or still sending, closed to make room at the cap
	Overflow int64 // served over the cap, for the priority routes only
}

// Stats returns the counters.
func (m *Meter) Stats() Stats {
	return Stats{Open: m.open.Load(), Refused: m.refused.Load(), Evicted: m.evicted.Load(), Overflow: m.overCap.Load()}
}

// Collectors expose the counters to Prometheus as framewire_http_*.
func (m *Meter) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "framewire_http_" + name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "framewire_http_connections", Help: "HTTP connections held."}, func() float64 { return float64(m.open.Load()) }),
		counter("connections_refused_total", "HTTP connections refused at the connection caps.", &m.refused),
		counter("connections_evicted_total", "Idle or still-sending HTTP connections closed to make room at the connection cap.", &m.evicted),
		counter("connections_over_cap_total", "HTTP connections served over the cap, for health and metrics routes only.", &m.overCap),
	}
}
