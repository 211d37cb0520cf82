// The C face of facedetect's C++ shim over OpenCV 4.6's CascadeClassifier:
// opaque handles and plain ints, so no C++ or OpenCV type reaches Go.
#ifndef FRAMEWIRE_FACEDETECT_SHIM_H
#define FRAMEWIRE_FACEDETECT_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fd_cascade fd_cascade;

// fd_open loads the cascade at path; on failure it returns NULL and writes
// the reason into err (errlen bytes, NUL-terminated).
fd_cascade *fd_open(const char *path, char *err, int errlen);

// fd_close frees c; NULL is a no-op.
void fd_close(fd_cascade *c);

// fd_detect finds faces in the w x h packed RGB24 picture rgb (stride bytes
// per row): it converts to grey, scales by f (0 < f <= 1), equalises the
// histogram and runs detectMultiScale with scale, neighbors and a smallest
// face of min_size pixels of the input picture. It writes up to cap boxes
// (x, y, w, h, in the input picture's pixels) into out, four ints each, and
// returns how many faces it found (which may exceed cap), or -1 with the
// reason in err.
int fd_detect(fd_cascade *c, const unsigned char *rgb, int w, int h, int stride, double f,
              double scale, int neighbors, int min_size, int *out, int cap, char *err, int errlen);

#ifdef __cplusplus
}
#endif

#endif
