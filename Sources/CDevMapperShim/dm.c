// libdevmapper, loaded on first use (dlopen): a command that never touches a kernel pool does not
// pay for loading it and the libraries it links (libudev, libselinux, libpcre2: about 1.3 ms of CPU
// per process start, measured on a C program that only links it). Every libdevmapper call goes
// through this file; each function below is called through a pointer the loader fills.
#define _GNU_SOURCE
#include "CDevMapperShim.h"
#include <libdevmapper.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DM_FUNCTIONS(X) X(dm_log_with_errno_init) X(dm_task_create) X(dm_task_destroy) X(dm_task_set_name) \
    X(dm_task_run) X(dm_task_get_info) X(dm_task_get_errno) X(dm_get_next_target) X(dm_task_set_sector)   \
    X(dm_task_set_message) X(dm_task_get_message_response) X(dm_task_no_flush) X(dm_task_set_cookie)       \
    X(dm_udev_wait) X(dm_task_get_names) X(dm_task_set_ro) X(dm_task_add_target)

#define DM_POINTER(name) __typeof__(&name) name;
static struct { DM_FUNCTIONS(DM_POINTER) } dm;
static int loaded;
static char load_error[512] = "libdevmapper not loaded yet";
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void log_fn(int level, const char *file, int line, int dm_errno_or_class, const char *f, ...);

static void load(void) {
    const char *so = "libdevmapper.so.1.02.1";
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load %s (install libdevmapper1.02.1): %s", so, dlerror());
        return;
    }
#define DM_LOAD(name)                                                                             \
    if (!(*(void **)&dm.name = dlsym(lib, #name))) {                                              \
        snprintf(load_error, sizeof load_error, "%s lacks %s", so, #name);                        \
        return;                                                                                   \
    }
    DM_FUNCTIONS(DM_LOAD)
    dm.dm_log_with_errno_init(log_fn);
    loaded = 1;
}

// From here on every dm_ call goes through the loaded pointer.
#define dm_log_with_errno_init dm.dm_log_with_errno_init
#define dm_task_create dm.dm_task_create
#define dm_task_destroy dm.dm_task_destroy
#define dm_task_set_name dm.dm_task_set_name
#define dm_task_run dm.dm_task_run
#define dm_task_get_info dm.dm_task_get_info
#define dm_task_get_errno dm.dm_task_get_errno
#define dm_get_next_target dm.dm_get_next_target
#define dm_task_set_sector dm.dm_task_set_sector
#define dm_task_set_message dm.dm_task_set_message
#define dm_task_get_message_response dm.dm_task_get_message_response
#define dm_task_no_flush dm.dm_task_no_flush
#define dm_task_set_cookie dm.dm_task_set_cookie
#define dm_udev_wait dm.dm_udev_wait
#define dm_task_get_names dm.dm_task_get_names
#define dm_task_set_ro dm.dm_task_set_ro
#define dm_task_add_target dm.dm_task_add_target

static __thread char last_error[512];
static __thread int last_errno;

static void log_fn(int level, const char *file, int line, int dm_errno_or_class, const char *f, ...) {
    (void)file; (void)line;
    if (level > 3 /* _LOG_ERR */) return;
    va_list ap;
    va_start(ap, f);
    vsnprintf(last_error, sizeof last_error, f, ap);
    va_end(ap);
    if (dm_errno_or_class > 0) last_errno = dm_errno_or_class;
}

void tbdm_init(void) {
    pthread_once(&once, load);
}

const char *tbdm_last_error(void) { return last_error; }
int tbdm_last_errno(void) { return last_errno; }

static void reset(void) { last_error[0] = 0; last_errno = 0; }

static int fail(struct dm_task *t, const char *what) {
    int e = t ? dm_task_get_errno(t) : 0;
    if (e) last_errno = e;
    if (!last_error[0]) snprintf(last_error, sizeof last_error, "%s failed", what);
    if (t) dm_task_destroy(t);
    return -1;
}

static struct dm_task *task(int type, const char *name) {
    reset();
    pthread_once(&once, load);
    if (!loaded) {
        snprintf(last_error, sizeof last_error, "%s", load_error);
        return NULL;
    }
    struct dm_task *t = dm_task_create(type);
    if (!t) return NULL;
    if (name && !dm_task_set_name(t, name)) { dm_task_destroy(t); return NULL; }
    return t;
}

int tbdm_get_info(const char *name, tbdm_info *out) {
    struct dm_task *t = task(DM_DEVICE_INFO, name);
    if (!t) return fail(NULL, "dm info");
    if (!dm_task_run(t)) return fail(t, "dm info");
    struct dm_info i;
    if (!dm_task_get_info(t, &i)) return fail(t, "dm info");
    out->exists = i.exists;
    out->suspended = i.suspended;
    out->read_only = i.read_only;
    out->open_count = i.open_count;
    out->major = i.major;
    out->minor = i.minor;
    dm_task_destroy(t);
    return 0;
}

int tbdm_table(const char *name, int status, char **out) {
    struct dm_task *t = task(status ? DM_DEVICE_STATUS : DM_DEVICE_TABLE, name);
    if (!t) return fail(NULL, "dm table");
    if (!dm_task_run(t)) return fail(t, status ? "dm status" : "dm table");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return fail(t, "open_memstream");
    void *next = NULL;
    do {
        uint64_t start = 0, length = 0;
        char *type = NULL, *params = NULL;
        next = dm_get_next_target(t, next, &start, &length, &type, &params);
        if (type) fprintf(f, "%llu %llu %s %s\n", (unsigned long long)start, (unsigned long long)length, type, params ? params : "");
    } while (next);
    fclose(f);
    dm_task_destroy(t);
    *out = buf;
    return 0;
}

int tbdm_message(const char *name, uint64_t sector, const char *message, char **response) {
    struct dm_task *t = task(DM_DEVICE_TARGET_MSG, name);
    if (!t) return fail(NULL, "dm message");
    if (!dm_task_set_sector(t, sector) || !dm_task_set_message(t, message)) return fail(t, "dm message");
    if (!dm_task_run(t)) return fail(t, "dm message");
    if (response) {
        const char *r = dm_task_get_message_response(t);
        *response = r && *r ? strdup(r) : NULL;
    }
    dm_task_destroy(t);
    return 0;
}

int tbdm_suspend(const char *name, int flush) {
    struct dm_task *t = task(DM_DEVICE_SUSPEND, name);
    if (!t) return fail(NULL, "dm suspend");
    if (!flush) dm_task_no_flush(t);
    if (!dm_task_run(t)) return fail(t, "dm suspend");
    dm_task_destroy(t);
    return 0;
}

/* Runs a task that makes, changes or removes a device node, and waits for udev to finish with it. */
static int run_with_udev(struct dm_task *t, const char *what) {
    uint32_t cookie = 0;
    if (!dm_task_set_cookie(t, &cookie, 0)) return fail(t, what);
    int ok = dm_task_run(t);
    dm_udev_wait(cookie);
    if (!ok) return fail(t, what);
    dm_task_destroy(t);
    return 0;
}

int tbdm_resume(const char *name) {
    struct dm_task *t = task(DM_DEVICE_RESUME, name);
    if (!t) return fail(NULL, "dm resume");
    return run_with_udev(t, "dm resume");
}

int tbdm_names(char **out) {
    struct dm_task *t = task(DM_DEVICE_LIST, NULL);
    if (!t) return fail(NULL, "dm list");
    if (!dm_task_run(t)) return fail(t, "dm list");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return fail(t, "open_memstream");
    struct dm_names *n = dm_task_get_names(t);
    if (n && n->dev) {
        unsigned next = 0;
        do {
            n = (struct dm_names *)((char *)n + next);
            fprintf(f, "%s\n", n->name);
            next = n->next;
        } while (next);
    }
    fclose(f);
    dm_task_destroy(t);
    *out = buf;
    return 0;
}

int tbdm_create_mode(const char *name, uint64_t start, uint64_t length, const char *type, const char *params, int read_only) {
    struct dm_task *t = task(DM_DEVICE_CREATE, name);
    if (!t) return fail(NULL, "dm create");
    if (read_only && !dm_task_set_ro(t)) return fail(t, "dm create");
    if (!dm_task_add_target(t, start, length, type, params)) return fail(t, "dm create");
    return run_with_udev(t, "dm create");
}

int tbdm_remove(const char *name) {
    struct dm_task *t = task(DM_DEVICE_REMOVE, name);
    if (!t) return fail(NULL, "dm remove");
    return run_with_udev(t, "dm remove");
}
