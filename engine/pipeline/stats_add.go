package pipeline

// Add folds b, another session's stats of the same track, into a: counters
// and present levels (queue depth, bitrates) summed, percentiles the worse
// of the two. Track and Backend stay a's.
func (a VideoStats) Add(b VideoStats) VideoStats {
	a.Emitted += b.Emitted
	a.Dropped += b.Dropped
	a.QueueDepth += b.QueueDepth
	a.Encoded += b.Encoded
	a.Sent += b.Sent
	a.Keyframes += b.Keyframes
	a.Skipped += b.Skipped
	a.DeviceEncoded += b.DeviceEncoded
	a.EncodeErrors += b.EncodeErrors
	a.SinkErrors += b.SinkErrors
	a.DeviceErrors += b.DeviceErrors
	a.Bitrate += b.Bitrate
	a.TargetBitrate += b.TargetBitrate
	a.EncodeP50, a.EncodeP99 = max(a.EncodeP50, b.EncodeP50), max(a.EncodeP99, b.EncodeP99)
	a.LatencyP50, a.LatencyP99 = max(a.LatencyP50, b.LatencyP50), max(a.LatencyP99, b.LatencyP99)
	worst := func(x, y Percentiles) Percentiles { return Percentiles{P50: max(x.P50, y.P50), P99: max(x.P99, y.P99)} }
	s, t := &a.Stages, b.Stages
	s.Dequeued, s.Paced, s.Converted = worst(s.Dequeued, t.Dequeued), worst(s.Paced, t.Paced), worst(s.Converted, t.Converted)
	s.Encoded, s.Handed, s.Wire = worst(s.Encoded, t.Encoded), worst(s.Handed, t.Handed), worst(s.Wire, t.Wire)
	return a
}

// Counters returns v's counters only: the present levels (queue depth,
// bitrates), the percentiles and the backend zero. It is what an ended
// session leaves in a process's running totals.
func (v VideoStats) Counters() VideoStats {
	return VideoStats{Track: v.Track, Emitted: v.Emitted, Dropped: v.Dropped, Encoded: v.Encoded, Sent: v.Sent,
		Keyframes: v.Keyframes, Skipped: v.Skipped, DeviceEncoded: v.DeviceEncoded,
		EncodeErrors: v.EncodeErrors, SinkErrors: v.SinkErrors, DeviceErrors: v.DeviceErrors}
}

// Add folds b, another session's stats of the same track, into a: counters
// and bitrates summed, the buffer level and percentiles the worse of the
// two. Track stays a's.
func (a AudioStats) Add(b AudioStats) AudioStats {
	a.Emitted += b.Emitted
	a.Dropped += b.Dropped
	a.QueueDepth += b.QueueDepth
	a.Frames += b.Frames
	a.Silent += b.Silent
	a.Underruns += b.Underruns
	a.Overflow += b.Overflow
	a.Trimmed += b.Trimmed
	a.SinkErrors += b.SinkErrors
	a.Bitrate += b.Bitrate
	a.Buffered = max(a.Buffered, b.Buffered)
	a.EncodeP50, a.EncodeP99 = max(a.EncodeP50, b.EncodeP50), max(a.EncodeP99, b.EncodeP99)
	a.LatencyP50, a.LatencyP99 = max(a.LatencyP50, b.LatencyP50), max(a.LatencyP99, b.LatencyP99)
	return a
}

// Counters returns a's counters only (see VideoStats.Counters).
func (a AudioStats) Counters() AudioStats {
	return AudioStats{Track: a.Track, Emitted: a.Emitted, Dropped: a.Dropped, Frames: a.Frames, Silent: a.Silent,
		Underruns: a.Underruns, Overflow: a.Overflow, Trimmed: a.Trimmed, SinkErrors: a.SinkErrors}
}
