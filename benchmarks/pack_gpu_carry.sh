#!/usr/bin/env bash
# Packs what benchmarks/gpu_check.sh needs on a lent GPU machine but cannot find there, into .gpu-carry/ (ignored by
# git), for the device tool's `carry`:
#
#   bash benchmarks/pack_gpu_carry.sh            then run there:  bash benchmarks/gpu_check.sh   (carry .gpu-carry)
#
# - ffmpeg.xz: a static ffmpeg (FFMPEG=path, else the binary of imageio-ffmpeg, the one CI also tests with). The
#   lent machine's image lists no ffmpeg and nothing can be installed there; without one every video step fails (the
#   1080p end-to-end fps, the NVDEC route). Static, so it needs none of this machine's libraries; xz brings the
#   9.0 build's 173 MB to about 50 MB, inside the 64 MiB a call may carry with the working tree.
set -eu
cd "$(dirname "$0")/.."
CARRY_DIR=.gpu-carry
mkdir -p "$CARRY_DIR"
grep -qxF "/$CARRY_DIR/" .git/info/exclude 2>/dev/null || echo "/$CARRY_DIR/" >>.git/info/exclude

source_binary="${FFMPEG:-}"
if [ -z "$source_binary" ]; then
	source_binary=$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())' 2>/dev/null || true)
fi
if [ -z "$source_binary" ] || [ ! -x "$source_binary" ]; then
	echo 'pack_gpu_carry: no static ffmpeg found: set FFMPEG=/path/to/static/ffmpeg or install imageio-ffmpeg' >&2
	exit 1
fi
# a binary linked to more than the C library's own parts would need this machine's libraries there too
extra_libraries=$(ldd "$source_binary" 2>/dev/null | grep '=>' | grep -vE '\blib(c|m|dl|rt|pthread|mvec|gcc_s)\.so' || true)
if [ -n "$extra_libraries" ]; then
	echo "pack_gpu_carry: $source_binary links to libraries the GPU machine may lack ($(echo "$extra_libraries" | wc -l) beyond the C library); a static build is needed" >&2
	exit 1
fi
version=$("$source_binary" -hide_banner -version | sed -n 1p)
# packed again when the archive is missing or holds another build (its version is kept beside it)
if [ ! -f "$CARRY_DIR/ffmpeg.xz" ] || [ "$(cat "$CARRY_DIR/ffmpeg.version" 2>/dev/null)" != "$version" ]; then
	# written under a temporary name: an interrupted pack must not leave a truncated archive under the final one
	xz -T0 -6 -c "$source_binary" >"$CARRY_DIR/ffmpeg.xz.partial"
	mv "$CARRY_DIR/ffmpeg.xz.partial" "$CARRY_DIR/ffmpeg.xz"
	echo "$version" >"$CARRY_DIR/ffmpeg.version"
fi
echo "pack_gpu_carry: $CARRY_DIR/ffmpeg.xz ($(du -h "$CARRY_DIR/ffmpeg.xz" | cut -f1), $(cat "$CARRY_DIR/ffmpeg.version"))"
echo "pack_gpu_carry: working tree plus carry: $(( ( $( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1) + $(du -cb "$CARRY_DIR" | tail -n 1 | cut -f1) ) / 1048576 )) MiB of the 64 MiB a call may carry"
