#ifndef DSAR_CSQLITE_SHIM_H
#define DSAR_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
