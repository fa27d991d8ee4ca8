#ifndef DSAR_CMARIADB_SHIM_H
#define DSAR_CMARIADB_SHIM_H
#include <mysql.h>
#endif
