#ifndef DSAR_CSHIMS_H
#define DSAR_CSHIMS_H

/// rename(2) that fails with EEXIST instead of replacing `to` (renameat2 RENAME_NOREPLACE).
int dsar_rename_noreplace(const char *from, const char *to);

/// Extended attributes (ACLs are `system.posix_acl_*`): flistxattr, fgetxattr, fsetxattr, fremovexattr.
#include <sys/xattr.h>

#endif
