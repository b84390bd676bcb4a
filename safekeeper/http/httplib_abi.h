// Include <httplib.h> through this header only. Debian's cpp-httplib is a
// compiled library (libcpp-httplib.so, pkg-config cpp-httplib) built with
// the flags below; they change the layout of httplib's classes, so every
// user of the header must define them too or the program corrupts memory
// (ODR/ABI mismatch: seen as garbled Request::matches and client crashes).
#pragma once

#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include <httplib.h>
