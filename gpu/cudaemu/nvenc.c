// Emulated NVENC driver library (libnvidia-encode.so.1) of a data-centre
// GPU without an encoder (H100, H200, A100): the NVIDIA driver installs the
// library there too, so FFmpeg loads it, queries the API version, creates
// the function table and only then fails, in nvEncOpenEncodeSessionEx,
// with NV_ENC_ERR_UNSUPPORTED_DEVICE ("unsupported device (2)"), and logs
// that at AV_LOG_ERROR. This library does exactly that for every session,
// so FFmpeg's real h264_nvenc open path runs under the emulator and the
// engine's handling of the refusal (probe once per device, no ERROR line)
// is tested. It counts what it was asked (nvencemu_stat) so a test can
// assert how many sessions were tried.
//
// Built by build.sh next to libcuda.so.1 against the same nv-codec-headers
// FFmpeg was built with (nvEncodeAPI.h).
#include "nvEncodeAPI.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// The newest API this "driver" supports: 12.2 (driver 550+; FFmpeg 7.1
// with nv-codec-headers 12.1 requires at least 12.1).
#define EMU_MAX_VERSION ((12u << 4) | 2u)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long long sessions_refused, instances, bad_calls;

static void count(long long *c) {
	pthread_mutex_lock(&mu);
	(*c)++;
	pthread_mutex_unlock(&mu);
}

// refuse_session is nvEncOpenEncodeSessionEx on a GPU without NVENC. A
// malformed call (wrong struct or API version, no device) is answered as
// the driver would and counted apart, so a test can tell "refused" from
// "called wrongly".
static NVENCSTATUS NVENCAPI refuse_session(NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS *p, void **encoder) {
	if (encoder) *encoder = NULL;
	if (!p || !encoder || p->version != NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER) {
		count(&bad_calls);
		return NV_ENC_ERR_INVALID_PTR;
	}
	if (p->apiVersion != NVENCAPI_VERSION || !p->device) {
		count(&bad_calls);
		return p->device ? NV_ENC_ERR_INVALID_VERSION : NV_ENC_ERR_INVALID_DEVICE;
	}
	count(&sessions_refused);
	return NV_ENC_ERR_UNSUPPORTED_DEVICE;
}

static NVENCSTATUS NVENCAPI refuse_legacy(void *device, uint32_t type, void **encoder) {
	(void)device;
	(void)type;
	if (encoder) *encoder = NULL;
	count(&sessions_refused);
	return NV_ENC_ERR_UNSUPPORTED_DEVICE;
}

static const char *NVENCAPI last_error(void *encoder) {
	(void)encoder;
	return "cudaemu: this GPU has no NVENC (emulated H100-class device)";
}

NVENCSTATUS NVENCAPI NvEncodeAPIGetMaxSupportedVersion(uint32_t *version) {
	if (!version) return NV_ENC_ERR_INVALID_PTR;
	*version = EMU_MAX_VERSION;
	return NV_ENC_SUCCESS;
}

NVENCSTATUS NVENCAPI NvEncodeAPICreateInstance(NV_ENCODE_API_FUNCTION_LIST *fl) {
	if (!fl) return NV_ENC_ERR_INVALID_PTR;
	if (fl->version != NV_ENCODE_API_FUNCTION_LIST_VER) return NV_ENC_ERR_INVALID_VERSION;
	uint32_t v = fl->version;
	memset(fl, 0, sizeof *fl);
	fl->version = v;
	fl->nvEncOpenEncodeSessionEx = refuse_session;
	fl->nvEncOpenEncodeSession = refuse_legacy;
	fl->nvEncGetLastErrorString = last_error;
	count(&instances);
	return NV_ENC_SUCCESS;
}

// nvencemu_stat reports a counter of this library by name:
// "sessions_refused" (well-formed nvEncOpenEncodeSessionEx calls, all
// refused), "instances" (NvEncodeAPICreateInstance calls), "bad_calls"
// (malformed session calls); -1 for an unknown name.
long long nvencemu_stat(const char *name) {
	long long v = -1;
	pthread_mutex_lock(&mu);
	if (strcmp(name, "sessions_refused") == 0) v = sessions_refused;
	else if (strcmp(name, "instances") == 0) v = instances;
	else if (strcmp(name, "bad_calls") == 0) v = bad_calls;
	pthread_mutex_unlock(&mu);
	return v;
}
