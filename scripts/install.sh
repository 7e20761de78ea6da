#!/usr/bin/env bash
# Installs crkernels for C, C++ and Fortran users under PREFIX (a cargo-c equivalent):
#
#   scripts/install.sh PREFIX
#
#   PREFIX/include/crkernels.h, crkernels.hpp
#   PREFIX/lib/libcrkernels.a
#   PREFIX/lib/libcrkernels.so.X.Y.Z (SONAME libcrkernels.so.X) + libcrkernels.so.X, libcrkernels.so
#   PREFIX/lib/pkgconfig/crkernels.pc                       (pkg-config crkernels)
#   PREFIX/lib/cmake/crkernels/crkernelsConfig.cmake        (find_package(crkernels):
#   PREFIX/lib/cmake/crkernels/crkernelsConfigVersion.cmake  crkernels::crkernels, ::crkernels_static)
#
# Environment: CARGO (default cargo), CARGO_TARGET_DIR (default <repo>/target),
# CRKERNELS_CARGO_FLAGS (extra cargo build flags, e.g. "--features cuda"),
# DESTDIR (staged installs, as for make install). Linux only for now.
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
if [ "$(uname -s)" != "Linux" ]; then
    echo "$0: only Linux is supported (shared library naming and SONAME)" >&2
    exit 2
fi
case "$1" in
    /*) prefix="$1" ;;
    *) prefix="$(pwd)/$1" ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo="${CARGO:-cargo}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in
    /*) ;;
    *) target_dir="$root/$target_dir" ;;
esac

version="$(sed -n 's/^version = "\([0-9][0-9.]*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)"
if [ -z "$version" ]; then
    echo "$0: cannot read the package version from $root/Cargo.toml" >&2
    exit 1
fi
major="${version%%.*}"
minor="${version#*.}"
minor="${minor%%.*}"

# shellcheck disable=SC2086 # CRKERNELS_CARGO_FLAGS is a list of flags
"$cargo" build --release --lib --package crkernels --manifest-path "$root/Cargo.toml" \
    --target-dir "$target_dir" ${CRKERNELS_CARGO_FLAGS:-}
build="$target_dir/release"
for f in libcrkernels.a libcrkernels.so; do
    if [ ! -f "$build/$f" ]; then
        echo "$0: $build/$f was not built" >&2
        exit 1
    fi
done

dest="${DESTDIR:-}$prefix"
libdir="$dest/lib"
includedir="$dest/include"
install -d "$libdir" "$includedir" "$libdir/pkgconfig" "$libdir/cmake/crkernels"

install -m 644 "$build/libcrkernels.a" "$libdir/libcrkernels.a"
install -m 755 "$build/libcrkernels.so" "$libdir/libcrkernels.so.$version"
ln -sfn "libcrkernels.so.$version" "$libdir/libcrkernels.so.$major"
ln -sfn "libcrkernels.so.$major" "$libdir/libcrkernels.so"
install -m 644 "$root/include/crkernels.h" "$root/include/crkernels.hpp" "$includedir/"

cat > "$libdir/pkgconfig/crkernels.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: crkernels
Description: Numerical kernels for cosmic-ray physics and neural emulators (C ABI, C++ header)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lcrkernels
Libs.private: -lm -lpthread -ldl
PC

cat > "$libdir/cmake/crkernels/crkernelsConfig.cmake" <<'CMAKE'
# crkernels CMake package (written by scripts/install.sh; relocatable).
#   find_package(crkernels REQUIRED)
#   target_link_libraries(app PRIVATE crkernels::crkernels)         # shared
#   target_link_libraries(app PRIVATE crkernels::crkernels_static)  # static, with its deps
# Both targets carry the include directory (crkernels.h, crkernels.hpp).
cmake_minimum_required(VERSION 3.10)
include(CMakeFindDependencyMacro)
find_dependency(Threads)

get_filename_component(_crkernels_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(crkernels_INCLUDE_DIRS "${_crkernels_prefix}/include")
set(crkernels_LIBRARIES crkernels::crkernels)

if(NOT TARGET crkernels::crkernels)
  add_library(crkernels::crkernels SHARED IMPORTED)
  set_target_properties(crkernels::crkernels PROPERTIES
    IMPORTED_LOCATION "${_crkernels_prefix}/lib/libcrkernels.so.@VERSION@"
    IMPORTED_SONAME "libcrkernels.so.@MAJOR@"
    INTERFACE_INCLUDE_DIRECTORIES "${_crkernels_prefix}/include")
endif()

if(NOT TARGET crkernels::crkernels_static)
  add_library(crkernels::crkernels_static STATIC IMPORTED)
  set_target_properties(crkernels::crkernels_static PROPERTIES
    IMPORTED_LOCATION "${_crkernels_prefix}/lib/libcrkernels.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_crkernels_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;m;${CMAKE_DL_LIBS}")
endif()

foreach(_crkernels_file "${_crkernels_prefix}/lib/libcrkernels.so.@VERSION@" "${_crkernels_prefix}/lib/libcrkernels.a")
  if(NOT EXISTS "${_crkernels_file}")
    set(crkernels_FOUND FALSE)
    set(crkernels_NOT_FOUND_MESSAGE "missing ${_crkernels_file}: reinstall with scripts/install.sh")
  endif()
endforeach()
unset(_crkernels_file)
unset(_crkernels_prefix)
CMAKE
sed -i -e "s/@VERSION@/$version/g" -e "s/@MAJOR@/$major/g" "$libdir/cmake/crkernels/crkernelsConfig.cmake"

cat > "$libdir/cmake/crkernels/crkernelsConfigVersion.cmake" <<CMAKE
# crkernels $version: compatible with requests of the same major version (for 0.x, the same
# minor version, as in Cargo's semver) not newer than $version; 64-bit only.
set(PACKAGE_VERSION "$version")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
set(PACKAGE_VERSION_EXACT FALSE)
if(NOT PACKAGE_FIND_VERSION OR PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
elseif(PACKAGE_FIND_VERSION VERSION_LESS PACKAGE_VERSION)
  if("\${PACKAGE_FIND_VERSION_MAJOR}" STREQUAL "$major")
    if(NOT "$major" STREQUAL "0" OR "\${PACKAGE_FIND_VERSION_MINOR}" STREQUAL "$minor")
      set(PACKAGE_VERSION_COMPATIBLE TRUE)
    endif()
  endif()
endif()
if(DEFINED CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION "$version (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
CMAKE

echo "installed crkernels $version into $dest"
