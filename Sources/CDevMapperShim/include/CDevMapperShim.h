#ifndef CDEVMAPPERSHIM_H
#define CDEVMAPPERSHIM_H
#include <stdint.h>

/* Device-mapper ioctls through libdevmapper, in the few shapes ThinBackup needs.
 * Every call returns 0 on success, -1 on failure; then tbdm_last_error() holds
 * libdevmapper's last error line and tbdm_last_errno() the kernel's errno.
 * Strings returned through char ** are malloc'd: the caller frees them. */

typedef struct {
    int exists;
    int suspended;
    int read_only;
    int32_t open_count;
    uint32_t major;
    uint32_t minor;
} tbdm_info;

/* Routes libdevmapper's log to the last-error buffer (no stderr output). Idempotent. */
void tbdm_init(void);
const char *tbdm_last_error(void);
int tbdm_last_errno(void);

int tbdm_get_info(const char *name, tbdm_info *out);
/* The table (status = 0) or status (status = 1): "START LENGTH TYPE PARAMS\n" per target. */
int tbdm_table(const char *name, int status, char **out);
/* A target message (e.g. "reserve_metadata_snap" to a thin-pool); *response may be NULL. */
int tbdm_message(const char *name, uint64_t sector, const char *message, char **response);
/* Suspend (flush = 1: flush queued I/O first, as dmsetup suspend does) and resume. */
int tbdm_suspend(const char *name, int flush);
int tbdm_resume(const char *name);
/* Every dm device's name, one a line. */
int tbdm_names(char **out);
/* Creates NAME with one target (START LENGTH TYPE PARAMS), read-only when read_only != 0 (the
   kernel refuses writes to it), and resumes it; removes NAME. */
int tbdm_create_mode(const char *name, uint64_t start, uint64_t length, const char *type, const char *params, int read_only);
int tbdm_remove(const char *name);

#endif
