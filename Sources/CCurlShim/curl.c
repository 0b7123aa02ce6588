// libcurl, loaded on first use (dlopen): a command that never talks HTTP does not pay for loading
// libcurl and the ~30 libraries it links (TLS, Kerberos, LDAP, SSH: ~5 ms and ~6 MiB per start).
// Every libcurl call goes through this file; the variadic curl_easy_setopt is reached through typed
// wrappers (Swift cannot call a variadic C function).
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include "CCurlShim.h"

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    char *(*version)(void);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} f;
static int loaded;
static char loadError[512] = "libcurl not loaded yet";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(loadError, sizeof loadError, "cannot load libcurl.so.4 (install libcurl4): %s", dlerror());
        return;
    }
#define SYM(field, name)                                                                          \
    if (!(*(void **)&f.field = dlsym(lib, name))) {                                               \
        snprintf(loadError, sizeof loadError, "libcurl.so.4 lacks %s", name);                     \
        return;                                                                                   \
    }
    SYM(global_init, "curl_global_init")
    SYM(easy_init, "curl_easy_init")
    SYM(easy_cleanup, "curl_easy_cleanup")
    SYM(easy_reset, "curl_easy_reset")
    SYM(easy_perform, "curl_easy_perform")
    SYM(easy_setopt, "curl_easy_setopt")
    SYM(easy_getinfo, "curl_easy_getinfo")
    SYM(easy_strerror, "curl_easy_strerror")
    SYM(version, "curl_version")
    SYM(slist_append, "curl_slist_append")
    SYM(slist_free_all, "curl_slist_free_all")
#undef SYM
    loaded = 1;
}

static int ready(void) {
    pthread_once(&once, load);
    return loaded;
}

const char *csys_curl_load_error(void) { return ready() ? NULL : loadError; }
CURLcode csys_curl_global_init(long flags) { return ready() ? f.global_init(flags) : CURLE_FAILED_INIT; }
CURL *csys_curl_easy_init(void) { return ready() ? f.easy_init() : NULL; }
void csys_curl_easy_cleanup(CURL *h) { if (ready()) f.easy_cleanup(h); }
void csys_curl_easy_reset(CURL *h) { if (ready()) f.easy_reset(h); }
CURLcode csys_curl_easy_perform(CURL *h) { return ready() ? f.easy_perform(h) : CURLE_FAILED_INIT; }
const char *csys_curl_easy_strerror(CURLcode c) { return ready() ? f.easy_strerror(c) : loadError; }
const char *csys_curl_version(void) { return ready() ? f.version() : loadError; }
struct curl_slist *csys_curl_slist_append(struct curl_slist *l, const char *s) { return ready() ? f.slist_append(l, s) : NULL; }
void csys_curl_slist_free_all(struct curl_slist *l) { if (ready()) f.slist_free_all(l); }

CURLcode csys_curl_setopt_long(CURL *h, CURLoption o, long v) { return ready() ? f.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode csys_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return ready() ? f.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode csys_curl_setopt_ptr(CURL *h, CURLoption o, const void *v) { return ready() ? f.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode csys_curl_setopt_str(CURL *h, CURLoption o, const char *v) { return ready() ? f.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode csys_curl_setopt_io(CURL *h, CURLoption o, csys_curl_io_cb cb) { return ready() ? f.easy_setopt(h, o, cb) : CURLE_FAILED_INIT; }
CURLcode csys_curl_setopt_xferinfo(CURL *h, CURLoption o, csys_curl_xferinfo_cb cb) { return ready() ? f.easy_setopt(h, o, cb) : CURLE_FAILED_INIT; }
CURLcode csys_curl_getinfo_long(CURL *h, CURLINFO info, long *v) { return ready() ? f.easy_getinfo(h, info, v) : CURLE_FAILED_INIT; }
