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
# - python-packages.tar.xz: Python packages the lent machine lacks, for its Python (GPU_PYTHON_VERSION, 3.12 there),
#   from PyPI here (GPU_CARRY_PACKAGES, default PyNvVideoCodec: the NVDEC route's decoder). Each wheel is slimmed to
#   what imports: its package, its bundled libraries that something in it links to, its licences (PyNvVideoCodec's
#   26 MB wheel carries the FFmpeg sources, notebooks and each library three times; about 5 MB remain). Skipped,
#   with a note, where PyPI cannot be reached or the total would pass the 64 MiB.
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

packages="${GPU_CARRY_PACKAGES-PyNvVideoCodec}"
python_version="${GPU_PYTHON_VERSION:-3.12}"
if [ -n "$packages" ]; then
	download_dir=$(mktemp -d)
	trap 'rm -rf "$download_dir"' EXIT
	# shellcheck disable=SC2086
	if python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d "$download_dir" $packages >"$download_dir/pip.log" 2>&1; then
		python3 - "$download_dir" "$CARRY_DIR/python-packages.tar.xz.partial" <<'PYTHON'
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

download_dir, archive_path = Path(sys.argv[1]), sys.argv[2]


def needed_libraries(path: Path) -> set:
	dynamic = subprocess.run(['readelf', '-d', str(path)], capture_output=True, text=True).stdout
	return {line.split('[', 1)[1].rstrip(']') for line in dynamic.splitlines() if '(NEEDED)' in line}


# without readelf nothing is known to be unneeded: every bundled library goes (a bigger archive, not a broken one)
can_read_links = shutil.which('readelf') is not None
if not can_read_links:
	print('pack_gpu_carry: no readelf (binutils): keeping every bundled library', file=sys.stderr)


with tarfile.open(archive_path, 'w:xz', preset=9) as archive:
	for wheel in sorted(download_dir.glob('*.whl')):
		with zipfile.ZipFile(wheel) as contents, tempfile.TemporaryDirectory() as scratch:
			# the import packages (folders with an __init__.py: the wheel also installs its samples and benchmarks as
			# top-level folders), the libraries folder auditwheel adds ('name.libs', or 'name.'), the metadata
			names = set(contents.namelist())
			top_levels = {name.split('/', 1)[0] for name in names}
			kept_tops = {top for top in top_levels if top + '/__init__.py' in names or top.endswith('.dist-info') or top.startswith(wheel.name.split('-')[0].lower() + '.')}
			members = [info for info in contents.infolist() if info.filename.split('/', 1)[0] in kept_tops and not info.is_dir()]
			for info in members:
				contents.extract(info, scratch)
			files = [Path(scratch) / info.filename for info in members]
			shared = [path for path in files if '.so' in path.name]
			needed = set().union(*(needed_libraries(path) for path in shared)) if shared else set()
			kept = 0
			for path, info in zip(files, members):
				# a bundled library that nothing links to by that name (the wheel's copies under other names) stays behind
				if can_read_links and path.name.startswith('lib') and '.so' in path.name and path.name not in needed:
					continue
				archive.add(path, arcname=info.filename)
				kept += 1
			print('pack_gpu_carry: ' + wheel.name + ': ' + str(kept) + ' files kept of ' + str(len(contents.infolist())))
PYTHON
		mv "$CARRY_DIR/python-packages.tar.xz.partial" "$CARRY_DIR/python-packages.tar.xz"
		echo "pack_gpu_carry: $CARRY_DIR/python-packages.tar.xz ($(du -h "$CARRY_DIR/python-packages.tar.xz" | cut -f1): $packages for Python $python_version)"
	else
		echo "pack_gpu_carry: could not download $packages for Python $python_version (see below); carrying ffmpeg only" >&2
		tail -n 3 "$download_dir/pip.log" >&2
		rm -f "$CARRY_DIR/python-packages.tar.xz"
	fi
fi
carried_mib() {
	echo $(( ( $( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1) + $(du -cb "$CARRY_DIR" | tail -n 1 | cut -f1) ) / 1048576 ))
}
# a call carries 64 MiB at most: the packages give way, ffmpeg is what every video step needs
if [ "$(carried_mib)" -ge 64 ] && [ -f "$CARRY_DIR/python-packages.tar.xz" ]; then
	rm -f "$CARRY_DIR/python-packages.tar.xz"
	echo "pack_gpu_carry: the packages would take the carry past 64 MiB; carrying ffmpeg only" >&2
fi
echo "pack_gpu_carry: working tree plus carry: $(carried_mib) MiB of the 64 MiB a call may carry"
