// Package engine runs real-time video models: it loads a model once per
// process, admits sessions, and wires each session's tracks to the encoders
// (package encode, and package gpu in CUDA builds) and to the WebRTC
// transport. Models never see a codec, a socket or an SDP.
package engine
