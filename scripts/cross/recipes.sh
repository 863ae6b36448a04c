# SPDX-License-Identifier: LGPL-2.1-or-later
# The recipes of the cross-built GStreamer prefix (zlib, libffi, gettext, and the meson-built
# components glib, GStreamer and its base and good plugins), sourced by scripts/cross-windows.sh,
# whose variables and helpers they use. Their bodies are part of the prefix's cache key
# (compute_key), so a change here rebuilds the prefix.
# shellcheck shell=bash

# Each build_<pkg> runs in the unpacked source dir (cwd), logs to $LOG.
configure_env() {
  # shellcheck disable=SC1007  # the empty values are meant
  export PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=
  export CC=$CC_HOST CXX=$CXX_HOST AR=$HOST-gcc-ar-posix RANLIB=$HOST-gcc-ranlib-posix
  export NM=$HOST-gcc-nm-posix STRIP=$HOST-strip WINDRES=$HOST-windres RC=$HOST-windres
  export CPPFLAGS="-I$PREFIX/include" LDFLAGS="-L$PREFIX/lib" CFLAGS="-O2" CXXFLAGS="-O2"
}

AUTOCONF_COMMON=(--host="$HOST" --build=x86_64-linux-gnu --disable-static --enable-shared
                 --disable-dependency-tracking)

build_zlib() {
  # zlib's ./configure refuses mingw and the DFSG tarball drops win32/;
  # do what win32/Makefile.gcc does: zlib1.dll + libz.dll.a + zlib.pc.
  local srcs="adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback
              inffast inflate inftrees trees uncompr zutil" s objs=()
  for s in $srcs; do
    run_logged "$LOG" "$CC" -O2 -Wall -D_LARGEFILE64_SOURCE=1 -c "$s.c" -o "$s.o"
    objs+=("$s.o")
  done
  run_logged "$LOG" "$CC" -shared -o zlib1.dll -Wl,--out-implib,libz.dll.a "${objs[@]}"
  mkdir -p "$PREFIX/bin" "$PREFIX/lib/pkgconfig" "$PREFIX/include"
  cp zlib1.dll "$PREFIX/bin/"; cp libz.dll.a "$PREFIX/lib/"; cp zlib.h zconf.h "$PREFIX/include/"
  local ver; ver=$(sed -n 's/^#define ZLIB_VERSION "\(.*\)"/\1/p' zlib.h)
  cat >"$PREFIX/lib/pkgconfig/zlib.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: zlib
Description: zlib compression library
Version: $ver
Libs: -L\${libdir} -lz
Cflags: -I\${includedir}
EOF
}

build_libffi() {
  run_logged "$LOG" ./configure "${AUTOCONF_COMMON[@]}" --prefix="$PREFIX" \
    --disable-docs --disable-multi-os-directory
  run_logged "$LOG" make -j"$JOBS"
  run_logged "$LOG" make install
}

build_pcre2() {
  run_logged "$LOG" ./configure "${AUTOCONF_COMMON[@]}" --prefix="$PREFIX" \
    --enable-pcre2-8 --disable-pcre2-16 --disable-pcre2-32 --enable-unicode \
    --disable-pcre2grep-libz --disable-pcre2grep-libbz2 --disable-pcre2test-libreadline
  run_logged "$LOG" make -j"$JOBS" libpcre2-8.la
  run_logged "$LOG" make install-libLTLIBRARIES install-includeHEADERS \
    install-nodist_includeHEADERS install-pkgconfigDATA
}

build_gettext() {
  # Only gettext-runtime's intl/ (libintl-8.dll); nls must stay enabled or
  # intl/ is not built. No libiconv: GLib uses its own win_iconv.
  cd gettext-runtime
  run_logged "$LOG" ./configure "${AUTOCONF_COMMON[@]}" --prefix="$PREFIX" \
    --enable-nls --with-included-gettext --disable-java --disable-csharp \
    --disable-libasprintf --disable-c++ --disable-openmp --disable-rpath \
    --without-libiconv-prefix --without-libintl-prefix
  run_logged "$LOG" make -C intl -j"$JOBS"
  run_logged "$LOG" make -C intl install
  [ -f "$PREFIX/include/libintl.h" ] || die "gettext: libintl.h was not installed (see $LOG)"
}

# meson_component <extra meson setup args...>
meson_component() {
  run_logged "$LOG" meson setup _build . --cross-file "$CROSS_FILE" \
    --prefix "$PREFIX" --libdir lib --buildtype release --default-library shared \
    --wrap-mode nodownload "$@"
  run_logged "$LOG" meson compile -C _build -j "$JOBS"
  run_logged "$LOG" meson install -C _build --no-rebuild
}

build_glib2_0() {
  meson_component -Dtests=false -Dinstalled_tests=false -Dnls=disabled -Dman=false \
    -Dgtk_doc=false -Dlibmount=disabled -Dselinux=disabled -Dxattr=false \
    -Dsysprof=disabled -Dlibelf=disabled -Ddtrace=false -Dsystemtap=false
}

build_gstreamer1_0() {
  meson_component -Dcheck=enabled -Dtools=enabled -Dtests=disabled -Dexamples=disabled \
    -Dbenchmarks=disabled -Ddoc=disabled -Dintrospection=disabled -Dnls=disabled \
    -Dlibunwind=disabled -Dlibdw=disabled -Ddbghelp=disabled -Dbash-completion=disabled
}

build_gst_plugins_base1_0() {
  # All libs (audio, app, pbutils, tag, video, riff, ...) are always built;
  # plugins: only the ones named.
  meson_component -Dauto_features=disabled \
    -Dapp=enabled -Daudioconvert=enabled -Daudioresample=enabled \
    -Daudiotestsrc=enabled -Dvolume=enabled -Daudiomixer=enabled \
    -Dgl=disabled -Dtools=disabled -Dtests=disabled -Dexamples=disabled \
    -Ddoc=disabled -Dintrospection=disabled -Dnls=disabled -Dorc=disabled
}

build_gst_plugins_good1_0() {
  meson_component -Dauto_features=disabled \
    -Dwavenc=enabled -Dwavparse=enabled -Dlevel=enabled \
    -Dtests=disabled -Dexamples=disabled -Ddoc=disabled -Dnls=disabled -Dorc=disabled
}

install_runtime_dlls() {
  # The mingw runtime DLLs that cross-built C/C++ code needs at run time.
  local d f
  for d in libwinpthread-1.dll libgcc_s_seh-1.dll libstdc++-6.dll; do
    f=$($CXX_HOST -print-file-name="$d")
    [ -f "$f" ] || die "runtime DLL $d not found (got '$f')"
    cp -f "$f" "$PREFIX/bin/"
  done
  [ -f "$PREFIX/bin/zlib1.dll" ] || die "zlib1.dll missing in $PREFIX/bin"
}

