// facedetect's C++ shim: CascadeClassifier behind a C ABI. Every OpenCV
// exception is caught here and turned into an error string; none crosses
// into Go. The scratch pictures live in the handle, so a detection at a
// steady size allocates nothing after the first.
#include "shim.h"

#include <cstdio>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

struct fd_cascade {
	cv::CascadeClassifier cascade;
	cv::Mat gray, small;
	std::vector<cv::Rect> faces;
};

static void set_err(char *err, int errlen, const char *msg) {
	if (err && errlen > 0) std::snprintf(err, errlen, "%s", msg);
}

extern "C" fd_cascade *fd_open(const char *path, char *err, int errlen) {
	fd_cascade *c = nullptr;
	try {
		c = new fd_cascade();
		if (!c->cascade.load(path)) {
			set_err(err, errlen, "cannot load the cascade (missing or not a cascade file)");
			delete c;
			return nullptr;
		}
		return c;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		delete c;
		return nullptr;
	}
}

extern "C" void fd_close(fd_cascade *c) { delete c; }

extern "C" int fd_detect(fd_cascade *c, const unsigned char *rgb, int w, int h, int stride, double f,
                         double scale, int neighbors, int min_size, int *out, int cap, char *err, int errlen) {
	try {
		cv::Mat in(h, w, CV_8UC3, const_cast<unsigned char *>(rgb), stride);
		cv::cvtColor(in, c->gray, cv::COLOR_RGB2GRAY);
		cv::Mat *img = &c->gray;
		if (f < 1) {
			cv::resize(c->gray, c->small, cv::Size(), f, f, cv::INTER_AREA);
			img = &c->small;
		}
		cv::equalizeHist(*img, *img);
		int min = static_cast<int>(min_size * f);
		c->cascade.detectMultiScale(*img, c->faces, scale, neighbors, 0, cv::Size(min, min));
		int n = static_cast<int>(c->faces.size());
		for (int i = 0; i < n && i < cap; i++) {
			const cv::Rect &r = c->faces[i];
			out[4 * i + 0] = static_cast<int>(r.x / f + 0.5);
			out[4 * i + 1] = static_cast<int>(r.y / f + 0.5);
			out[4 * i + 2] = static_cast<int>(r.width / f + 0.5);
			out[4 * i + 3] = static_cast<int>(r.height / f + 0.5);
		}
		return n;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		return -1;
	}
}
