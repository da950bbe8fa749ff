#!/bin/sh
# Builds examples/apple.c as a program outside nabla would, through pkg-config,
# the ways docs/c-api.md ("Building a program against nabla") shows:
#   1. against the uninstalled build (build/meson-uninstalled/nabla-uninstalled.pc),
#      run with LD_LIBRARY_PATH and with -Wl,-rpath;
#   2. after `meson install --destdir` into a temporary folder (the real prefix
#      is never touched; the staged nabla.pc gets the staged prefix), linked
#      with -Wl,-rpath, and statically against libnabla.a with
#      `pkg-config --static`; and runs the installed `nabla --version`.
# Every program must build, find its library and print the right numbers.
#   tests/pkgconfig.sh BUILD_DIR SOURCE_DIR [SANITIZE]
# SANITIZE: meson's b_sanitize of the build ("none", "address,undefined"): a
# sanitized library needs the program built with the same -fsanitize.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
san=${3:-none}
cc=${CC:-cc}
meson=${MESON:-meson}
sanflags=""
[ "$san" = none ] || [ -z "$san" ] || sanflags="-fsanitize=$san"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-pkgconfig-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset LD_LIBRARY_PATH PKG_CONFIG_SYSROOT_DIR
apple=$src/examples/apple.c

fail() { echo "pkgconfig.sh: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# The program's output: the price and its three gradients.
check_apple() {
  out=$("$@" 2>&1) || fail "$* failed: $out"
  for want in "= 220" "d price / d apple        = 2.2" "d price / d apple_count  = 110" \
              "d price / d tax          = 200"; do
    case $out in *"$want"*) ;; *) fail "$*: no '$want' in: $out" ;; esac
  done
}

# Which libnabla a program loads ("" when it loads none).
loaded_nabla() { ldd "$1" | awk '/libnabla/ {print $3}'; }

version=$(sed -n 's/^#define NB_VERSION_STRING "\(.*\)"$/\1/p' "$build/include/nabla/version.h")
[ -n "$version" ] || fail "no NB_VERSION_STRING in $build/include/nabla/version.h"

# ---- 1. the uninstalled build ----------------------------------------------
step "uninstalled: PKG_CONFIG_PATH=$build/meson-uninstalled"
export PKG_CONFIG_PATH="$build/meson-uninstalled"
pkg-config --exists nabla || fail "pkg-config finds no nabla in $PKG_CONFIG_PATH"
[ "$(pkg-config --modversion nabla)" = "$version" ] ||
  fail "nabla-uninstalled.pc says version $(pkg-config --modversion nabla), version.h $version"
case " $(pkg-config --libs nabla) " in *" -lnabla "*) ;; *) fail "no -lnabla in $(pkg-config --libs nabla)" ;; esac
# shellcheck disable=SC2046  # pkg-config's flags are words
$cc $sanflags "$apple" $(pkg-config --cflags --libs nabla) -o "$tmp/apple" ||
  fail "cannot build apple.c against the uninstalled build"
check_apple env LD_LIBRARY_PATH="$build" "$tmp/apple"
$cc $sanflags "$apple" $(pkg-config --cflags --libs nabla) -Wl,-rpath,"$build" -o "$tmp/apple_rpath" ||
  fail "cannot build apple.c with -Wl,-rpath"
check_apple "$tmp/apple_rpath"
[ "$(loaded_nabla "$tmp/apple_rpath")" = "$build/$(readlink "$build/libnabla.so")" ] ||
  fail "apple_rpath loads $(loaded_nabla "$tmp/apple_rpath"), not the build's library"

# ---- 2. installed into a staging folder -------------------------------------
stage=$tmp/stage
step "installed: meson install --destdir $stage"
$meson install -C "$build" --no-rebuild --destdir "$stage" --quiet >"$tmp/install.log" 2>&1 ||
  fail "meson install failed: $(cat "$tmp/install.log")"
pc=$(find "$stage" -name nabla.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || fail "meson install wrote no nabla.pc"
prefix=$(sed -n 's/^prefix=//p' "$pc")
# The staged files are where PREFIX would be: give the .pc that prefix, as
# installing with --prefix "$stage$prefix" would have.
mkdir "$tmp/pc"
sed "s|^prefix=.*|prefix=$stage$prefix|" "$pc" >"$tmp/pc/nabla.pc"
export PKG_CONFIG_PATH="$tmp/pc"
libdir=$(pkg-config --variable=libdir nabla)
[ -f "$libdir/libnabla.so" ] || fail "no libnabla.so in the .pc's libdir $libdir"
[ -f "$(pkg-config --variable=includedir nabla)/nabla/version.h" ] || fail "version.h is not installed"
$cc $sanflags "$apple" $(pkg-config --cflags --libs nabla) -Wl,-rpath,"$libdir" -o "$tmp/apple_inst" ||
  fail "cannot build apple.c against the installed nabla"
check_apple "$tmp/apple_inst"
case $(loaded_nabla "$tmp/apple_inst") in
  "$libdir"/libnabla.so.*) ;;
  *) fail "apple_inst loads '$(loaded_nabla "$tmp/apple_inst")', not $libdir's library" ;;
esac

step "installed, static: pkg-config --static"
# libnabla.a with everything Requires.private and Libs.private list.
static_libs=$(pkg-config --static --libs nabla | sed 's/-lnabla\( \|$\)/-l:libnabla.a\1/')
$cc $sanflags "$apple" $(pkg-config --cflags nabla) $static_libs -o "$tmp/apple_static" ||
  fail "cannot link apple.c statically with: $static_libs"
check_apple "$tmp/apple_static"
[ -z "$(loaded_nabla "$tmp/apple_static")" ] || fail "apple_static loads a shared libnabla"

step "installed: nabla --version"
tool=$(find "$stage" -path '*/bin/nabla')
[ -x "$tool" ] || fail "meson install wrote no bin/nabla"
if ldd "$tool" | grep -q 'not found'; then fail "the installed nabla misses a library: $(ldd "$tool")"; fi
out=$("$tool" --version) || fail "installed nabla --version failed: $out"
case $out in "nabla $version "*|"nabla $version") ;; *) fail "nabla --version says '$out', want nabla $version" ;; esac
echo "ok: $out"
