#ifndef DSAR_CARCHIVE_SHIM_H
#define DSAR_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
