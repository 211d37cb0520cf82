/* Framewire's C ABI: the types and callback signatures of libframewire.so.
 * The exported functions are declared in the generated libframewire.h,
 * which includes this file. Every function returns FW_OK (0) or a
 * negative FW_E* code and, where it takes (err, errcap), writes a
 * NUL-terminated message there saying what was wrong and what was
 * expected. Handles are opaque non-zero integers, never pointers. */
#ifndef FRAMEWIRE_ABI_H
#define FRAMEWIRE_ABI_H
#include <stdint.h>
#include <stddef.h>

#define FW_ABI_VERSION 1

enum {
	FW_OK = 0,
	FW_EINVAL = -1,   /* a bad argument: the message says which and what is expected */
	FW_ECLOSED = -2,  /* the session or track has ended */
	FW_ENODEV = -3,   /* no device path: built without CUDA or no GPU */
	FW_ESHORT = -4,   /* the caller's buffer is too small: the needed size was written */
	FW_EHANDLE = -5,  /* an unknown or stale handle */
	FW_EFAIL = -6,    /* anything else: the message says what */
	FW_ENOCLIENT = -7, /* send: no client is attached to the session right now */
	FW_ENONE = 1      /* not an error: no data yet (latest before the first frame) */
};

/* Track kinds, as the tracks page names them. */
enum { FW_VIDEO_OUT = 1, FW_AUDIO_OUT = 2, FW_VIDEO_IN = 3, FW_AUDIO_IN = 4 };

/* Pixel formats of device frames. */
enum { FW_RGB24 = 1, FW_RGBA = 2 };

/* An uploaded file handed to a command: valid during the callback only. */
typedef struct {
	const char *param;    /* the command parameter it is for */
	const char *name;     /* the client's (sanitised) file name */
	const char *mime;     /* its MIME type */
	const uint8_t *data;  /* size bytes */
	int64_t size;
} fw_file;

/* One inbound media event for on_media: valid during the callback only. */
typedef struct {
	const char *track;     /* the input track's name */
	int32_t kind;          /* FW_VIDEO_IN or FW_AUDIO_IN */
	const uint8_t *pixels; /* video: packed RGB24, height*width*3 bytes */
	int32_t width, height;
	const int16_t *pcm;    /* audio: interleaved int16 */
	int32_t samples, channels, sample_rate;
	int64_t capture_unix_ns;
} fw_media;

/* Callbacks. Each runs on an engine (Go) thread; a Python binding takes
 * the GIL in it. Returning non-zero with a message in err reports the
 * model's error the way a Go model's error is reported. */
typedef int32_t (*fw_init_fn)(uintptr_t model, const char *config_json, char *err, int32_t errcap);
typedef int32_t (*fw_session_fn)(uintptr_t session, char *err, int32_t errcap);
typedef int32_t (*fw_command_fn)(uintptr_t session, const char *name, const char *args_json,
	int32_t nfiles, const fw_file *files, char *err, int32_t errcap);
typedef int32_t (*fw_media_fn)(uintptr_t session, const fw_media *media, char *err, int32_t errcap);
typedef void (*fw_end_fn)(uintptr_t session);
typedef void (*fw_release_fn)(uintptr_t ctx);
/* A client (connection) of the session connected (connected 1) or was
 * lost while the session goes on (connected 0); live is the number of
 * clients connected after the change. Runs on the session's command
 * thread, in order with the commands. */
typedef void (*fw_client_fn)(uintptr_t session, int32_t connected, int32_t client, int32_t live);

static inline int32_t fw_call_init(fw_init_fn f, uintptr_t m, const char *cfg, char *err, int32_t n) { return f(m, cfg, err, n); }
static inline int32_t fw_call_session(fw_session_fn f, uintptr_t s, char *err, int32_t n) { return f(s, err, n); }
static inline int32_t fw_call_command(fw_command_fn f, uintptr_t s, const char *name, const char *args,
	int32_t nfiles, const fw_file *files, char *err, int32_t n) { return f(s, name, args, nfiles, files, err, n); }
static inline int32_t fw_call_media(fw_media_fn f, uintptr_t s, const fw_media *m, char *err, int32_t n) { return f(s, m, err, n); }
static inline void fw_call_end(fw_end_fn f, uintptr_t s) { f(s); }
static inline void fw_call_release(fw_release_fn f, uintptr_t ctx) { f(ctx); }
static inline void fw_call_client(fw_client_fn f, uintptr_t s, int32_t c, int32_t id, int32_t live) { f(s, c, id, live); }

#endif
