#ifndef DSAR_CZLIB_SHIM_H
#define DSAR_CZLIB_SHIM_H
#include <zlib.h>
#endif
