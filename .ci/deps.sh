#!/usr/bin/env bash
# Installs and builds everything Framewire needs that is not Go source:
# Debian build packages, FFmpeg 7.1.5 (with trixie's nv-codec-headers) into
# $PREFIX, and the CUDA driver header and stub library for `-tags cuda`
# compile checks. Every step is stamped: a rerun is a no-op.
#
# usage: .ci/deps.sh apt|ffmpeg|cuda|chromium|node|redis|python|all   (BUILD=<dir>, default ./build)
set -euo pipefail

BUILD=${BUILD:-$(pwd)/build}
PREFIX=$BUILD/ffmpeg
CUDA_DIR=$BUILD/cuda
FFMPEG_VERSION=7.1.5
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
}

step_ffmpeg() {
	local stamp=$PREFIX/.stamp-$FFMPEG_VERSION
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
		--disable-everything --disable-programs --disable-doc --disable-autodetect \
		--disable-debug --enable-pthreads \
		--enable-gpl --enable-libx264 --enable-libvpx --enable-libopus \
		--enable-ffnvcodec --enable-nvenc --enable-nvdec --enable-cuvid \
		--enable-swscale --enable-swresample --enable-avfilter \
		--enable-encoder=libx264,libvpx_vp8,libopus,h264_nvenc,rawvideo \
		--enable-decoder=h264,vp8,opus,h264_cuvid,hevc_cuvid,rawvideo \
		--enable-hwaccel=h264_nvdec,hevc_nvdec \
		--enable-bsf=h264_mp4toannexb,extract_extradata \
		--enable-parser=h264,hevc,vp8,opus \
		--enable-muxer=mp4,matroska,ivf,h264,ogg,null \
		--enable-demuxer=mov,matroska,ivf,h264,ogg \
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
# package's tests use (PyPI is not used): NumPy, PyTorch (CPU), pytest.
step_python() {
	need_pkgs python3 python3-numpy python3-torch python3-pytest python3-venv python3-pip
}

case "${1:-all}" in
apt) step_apt ;;
ffmpeg) step_ffmpeg ;;
cuda) step_cuda ;;
chromium) step_chromium ;;
node) step_node ;;
redis) step_redis ;;
python) step_python ;;
all) step_apt; step_ffmpeg; step_cuda ;;
*) echo "usage: $0 apt|ffmpeg|cuda|chromium|node|redis|python|all" >&2; exit 2 ;;
esac
