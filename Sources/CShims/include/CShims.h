#ifndef DSAR_CSHIMS_H
#define DSAR_CSHIMS_H

/// rename(2) that fails with EEXIST instead of replacing `to` (renameat2 RENAME_NOREPLACE).
int dsar_rename_noreplace(const char *from, const char *to);

/// Starts writeback of a file's dirty pages without waiting (sync_file_range SYNC_FILE_RANGE_WRITE):
/// a hint before the fsync that makes them durable, so that many files' writes go out together.
int dsar_start_writeback(int fd);

/// Extended attributes (ACLs are `system.posix_acl_*`): flistxattr, fgetxattr, fsetxattr, fremovexattr.
#include <sys/xattr.h>

#endif
