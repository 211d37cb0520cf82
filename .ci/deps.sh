#!/usr/bin/env bash
# Installs and builds everything Framewire needs that is not Go source:
# Debian build packages, FFmpeg 7.1.5 (with trixie's nv-codec-headers) into
# $PREFIX, and the CUDA driver header and stub library for `-tags cuda`
# compile checks, and the face video the demo's browser test plays as its
# camera. Every step is stamped: a rerun is a no-op.
#
# usage: .ci/deps.sh apt|ffmpeg|cuda|chromium|node|redis|python|facevideo|all   (BUILD=<dir>, default ./build)
set -euo pipefail

BUILD=${BUILD:-$(pwd)/build}
PREFIX=$BUILD/ffmpeg
CUDA_DIR=$BUILD/cuda
FFMPEG_VERSION=7.1.5
# FFMPEG_CONFIG names the configure line below: bump it with every change
# there so that a machine with an older build rebuilds (2: FFmpeg's native
# AAC encoder and decoder for recordings, and ffprobe, a demuxer outside
# our code that the recording tests read the files with).
FFMPEG_CONFIG=2
JOBS=${JOBS:-$(nproc)}

log() { printf '[deps] %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return
	log "apt-get update"
	as_root apt-get update -qq
	apt_updated=1
}

# need_pkgs installs the Debian packages in "$@" that are not installed yet.
need_pkgs() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return
	apt_update
	log "apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# apt_source adds a deb822 source file once; a new source forces an update.
apt_source() {
	local name=$1 body=$2 f=/etc/apt/sources.list.d/$1.sources
	if [ ! -f "$f" ] || [ "$(cat "$f")" != "$body" ]; then
		log "adding apt source $name"
		printf '%s\n' "$body" | as_root tee "$f" >/dev/null
		apt_updated=
	fi
}

step_apt() {
	need_pkgs build-essential nasm pkg-config libx264-dev libvpx-dev libopus-dev zlib1g-dev xz-utils ca-certificates clang-14
	# The demo model's face detector (cmd/framewire/internal/facedetect):
	# OpenCV 4.6's objdetect and the frontal-face Haar cascade.
	need_pkgs libopencv-objdetect-dev opencv-data
}

step_ffmpeg() {
	local stamp=$PREFIX/.stamp-$FFMPEG_VERSION-$FFMPEG_CONFIG
	[ -f "$stamp" ] && return
	step_apt
	if ! apt-cache showsrc ffmpeg 2>/dev/null | grep -q "^Version: .*7\.1"; then
		apt_source framewire-trixie-src "Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
		apt_update
	fi
	local src=$BUILD/src
	mkdir -p "$src"
	(
		cd "$src"
		ls ffmpeg_${FFMPEG_VERSION}.orig.tar.* >/dev/null 2>&1 && ls nv-codec-headers_*.orig.tar.* >/dev/null 2>&1 ||
			apt-get source --download-only --tar-only ffmpeg/trixie nv-codec-headers/trixie
		ls ffmpeg_${FFMPEG_VERSION}.orig.tar.* >/dev/null || { log "trixie no longer serves ffmpeg $FFMPEG_VERSION"; exit 1; }
		rm -rf ffmpeg-$FFMPEG_VERSION nv-codec-headers
		tar xf ffmpeg_${FFMPEG_VERSION}.orig.tar.*
		mkdir nv-codec-headers && tar xf nv-codec-headers_*.orig.tar.* -C nv-codec-headers --strip-components=1
	)
	log "installing nv-codec-headers into $PREFIX"
	make -C "$src/nv-codec-headers" PREFIX="$PREFIX" install >/dev/null
	log "configuring FFmpeg $FFMPEG_VERSION"
	cd "$src/ffmpeg-$FFMPEG_VERSION"
	PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig ./configure \
		--prefix="$PREFIX" --enable-shared --disable-static --enable-pic \
		--disable-everything --disable-programs --enable-ffprobe --disable-doc --disable-autodetect \
		--disable-debug --enable-pthreads \
		--enable-gpl --enable-libx264 --enable-libvpx --enable-libopus \
		--enable-ffnvcodec --enable-nvenc --enable-nvdec --enable-cuvid \
		--enable-swscale --enable-swresample --enable-avfilter \
		--enable-encoder=libx264,libvpx_vp8,libopus,h264_nvenc,rawvideo,aac \
		--enable-decoder=h264,vp8,opus,h264_cuvid,hevc_cuvid,rawvideo,aac \
		--enable-hwaccel=h264_nvdec,hevc_nvdec \
		--enable-bsf=h264_mp4toannexb,extract_extradata \
		--enable-parser=h264,hevc,vp8,opus,aac \
		--enable-muxer=mp4,matroska,ivf,h264,ogg,null \
		--enable-demuxer=mov,matroska,ivf,h264,ogg,hls \
		--enable-protocol=file,pipe \
		--enable-filter=buffer,buffersink,abuffer,abuffersink,format,aformat,scale,aresample,null,anull,hwupload_cuda,hwdownload \
		>"$BUILD/ffmpeg-configure.log" 2>&1 || { tail -30 "$BUILD/ffmpeg-configure.log"; exit 1; }
	log "building FFmpeg (make -j$JOBS)"
	make -j"$JOBS" >"$BUILD/ffmpeg-build.log" 2>&1 || { tail -30 "$BUILD/ffmpeg-build.log"; exit 1; }
	make install >/dev/null
	rm -rf "$src/ffmpeg-$FFMPEG_VERSION" "$src/nv-codec-headers"
	touch "$stamp"
	log "FFmpeg $FFMPEG_VERSION installed in $PREFIX"
}

# step_cuda extracts cuda.h and the libcuda.so link stub from Debian's
# non-free nvidia-cuda-dev .deb without installing it (5 GB installed; and
# Debian's libcuda1 must never shadow a host's driver).
step_cuda() {
	local stamp=$CUDA_DIR/.stamp
	[ -f "$stamp" ] && return
	apt_source framewire-bookworm-nonfree "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
	apt_update
	local tmp=$BUILD/cuda-deb
	mkdir -p "$tmp" "$CUDA_DIR/include" "$CUDA_DIR/lib"
	(cd "$tmp" && { ls nvidia-cuda-dev_*.deb >/dev/null 2>&1 || apt-get download nvidia-cuda-dev; })
	log "extracting cuda.h and libcuda.so stub"
	dpkg-deb --fsys-tarfile "$tmp"/nvidia-cuda-dev_*.deb |
		tar -x -C "$tmp" --wildcards '*/include/cuda.h' '*/stubs/libcuda.so'
	cp "$(find "$tmp" -name cuda.h -path '*include*' | head -1)" "$CUDA_DIR/include/"
	cp "$(find "$tmp" -name libcuda.so -path '*stubs*' | head -1)" "$CUDA_DIR/lib/"
	rm -rf "$tmp"
	touch "$stamp"
}

# step_ffmpeg_cli builds the ffmpeg program alone, static, from the same
# FFmpeg $FFMPEG_VERSION source, into $BUILD/ffmpeg-cli: only what turns an
# XviD AVI into Y4M (the libraries in $PREFIX have no AVI demuxer, MPEG-4
# decoder or Y4M muxer, and no programs).
step_ffmpeg_cli() {
	local dir=$BUILD/ffmpeg-cli stamp=$BUILD/ffmpeg-cli/.stamp-$FFMPEG_VERSION
	[ -f "$stamp" ] && return
	step_ffmpeg
	local src=$BUILD/src
	ls "$src"/ffmpeg_${FFMPEG_VERSION}.orig.tar.* >/dev/null 2>&1 ||
		{ log "no FFmpeg source in $src: remove $PREFIX/.stamp-$FFMPEG_VERSION and rerun (step ffmpeg fetches it)"; exit 1; }
	(cd "$src" && rm -rf ffmpeg-cli && mkdir ffmpeg-cli && tar xf ffmpeg_${FFMPEG_VERSION}.orig.tar.* -C ffmpeg-cli --strip-components=1)
	log "building the ffmpeg program into $dir"
	cd "$src/ffmpeg-cli"
	./configure --prefix="$dir" --disable-shared --enable-static \
		--disable-everything --disable-doc --disable-autodetect --disable-debug \
		--disable-ffplay --disable-ffprobe --enable-ffmpeg --enable-pthreads \
		--enable-swscale --enable-avfilter \
		--enable-demuxer=avi,yuv4mpegpipe --enable-decoder=mpeg4,rawvideo --enable-parser=mpeg4video \
		--enable-muxer=yuv4mpegpipe --enable-encoder=wrapped_avframe,rawvideo \
		--enable-filter=scale,format,null,buffer,buffersink,fps --enable-protocol=file,pipe \
		>"$BUILD/ffmpeg-cli-configure.log" 2>&1 || { tail -30 "$BUILD/ffmpeg-cli-configure.log"; exit 1; }
	make -j"$JOBS" ffmpeg >"$BUILD/ffmpeg-cli-build.log" 2>&1 || { tail -30 "$BUILD/ffmpeg-cli-build.log"; exit 1; }
	mkdir -p "$dir/bin" && cp ffmpeg "$dir/bin/ffmpeg"
	cd "$BUILD" && rm -rf "$src/ffmpeg-cli"
	touch "$stamp"
}

# step_facevideo makes the browser test's camera: Megamind.avi from Debian's
# opencv-doc (an animated face, 720x528, 270 frames; only that file is taken
# from the .deb, not the 270 MB of documentation) turned by our ffmpeg into
# the yuv420p Y4M that Chromium's --use-file-for-fake-video-capture plays.
step_facevideo() {
	local out=$BUILD/testdata/megamind.y4m
	[ -f "$out" ] && return
	step_ffmpeg_cli
	local tmp=$BUILD/opencv-doc-deb avi=usr/share/doc/opencv-doc/examples/data/Megamind.avi
	mkdir -p "$tmp" "$BUILD/testdata"
	if ! ls "$tmp"/opencv-doc_*.deb >/dev/null 2>&1; then
		apt_update
		(cd "$tmp" && apt-get download opencv-doc)
	fi
	dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -x -C "$tmp" "./$avi"
	log "converting Megamind.avi to $out"
	"$BUILD/ffmpeg-cli/bin/ffmpeg" -loglevel error -y -i "$tmp/$avi" -pix_fmt yuv420p -f yuv4mpegpipe "$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$tmp"
}

step_chromium() {
	need_pkgs chromium
}

# step_node makes sure node and npm exist (any install counts; Debian's
# packages otherwise).
step_node() {
	command -v node >/dev/null && command -v npm >/dev/null && return
	need_pkgs nodejs npm
}

# step_redis installs Debian's redis-server for the production-mode tests
# and the cluster target; the tests start their own instances on free ports
# (redis-server --port N --save ''), so the system service is not needed.
step_redis() {
	need_pkgs redis-server
}

# step_python installs Debian's interpreter and the packages the Python
# package's tests and examples use (PyPI is not used): NumPy, PyTorch (CPU),
# pytest, and OpenCV (examples/face_filter.py, with opencv-data from step_apt).
step_python() {
	need_pkgs python3 python3-numpy python3-torch python3-pytest python3-venv python3-pip python3-opencv
}

case "${1:-all}" in
apt) step_apt ;;
ffmpeg) step_ffmpeg ;;
cuda) step_cuda ;;
chromium) step_chromium ;;
node) step_node ;;
redis) step_redis ;;
python) step_python ;;
facevideo) step_facevideo ;;
all) step_apt; step_ffmpeg; step_cuda ;;
*) echo "usage: $0 apt|ffmpeg|cuda|chromium|node|redis|python|facevideo|all" >&2; exit 2 ;;
esac
