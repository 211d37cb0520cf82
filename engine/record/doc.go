// Package record records sessions as HLS with fragmented-MP4 segments,
// the runtime's recording and clips contract
// (reactor-recording-and-viewers.md §1).
//
// A Recorder taps the recorded video output after its live encoder
// (pipeline.VideoConfig.Tap): the H.264 access units the peers get are
// copied into a bounded queue and muxed, on the recorder's own goroutine,
// into init.mp4 and chunk_NNNNN.m4s (chunk_seconds of media each), with no
// second encode. At each segment boundary of media time the tap asks the
// live encoder for a keyframe, so every segment starts with one (unless
// the encoder made one on its own as the boundary's last frame: the
// segment then starts on it, a frame early, and no IDR is forced). Media
// time, not wall time, drives the markers: a frame counts 1/rate seconds
// however long the model took to make it, and a pause adds nothing.
//
// Recording never holds live media up: a full queue (slow disk) drops
// frames, counted, until the next keyframe; a failure (disk full, a
// stream it cannot record) disables the recording for that session with
// one log line, and clip requests are then refused with ErrDisabled.
//
// A Store holds every recording of the process in one directory, one
// folder per recording id: it answers the /clips playlists and segment
// lookups (engine/protocol serves them), deletes finished recordings
// after the retention window (300 s by default) and keeps a disk budget,
// oldest first. Files are written under a temporary name and renamed once
// complete and synced, so after a crash (kill -9) every segment under its
// own name plays; a store opened on the same directory later adopts such
// recordings (served as finished, deleted after the retention window).
//
// Audio: the recorded audio output's PCM, as its pipeline plays it out
// (pipeline.AudioConfig.Tap), is paired with video media time (padded
// with silence, so a model without audio gets a silent track) and
// encoded to AAC-LC (128 kb/s, 48 kHz mono) on the recorder's goroutine
// with FFmpeg's native aac encoder, which the repository's build
// (build/ffmpeg) has. An FFmpeg built without it records video only
// (logged). The encoder's priming (1024 samples) is written as the audio
// track's edit list, so the audio starts with the video; a finished
// recording's audio track ends up to two AAC packets after its video.
// Digital silence is encoded once and its packet reused.
//
// Not recorded: outputs that negotiated VP8 (the recording is then
// disabled for the session, with the reason logged); a second H.264
// encode for them is left to do.
package record
