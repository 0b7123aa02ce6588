#ifndef CCURLSHIM_H
#define CCURLSHIM_H
#include <curl/curl.h>

/* libcurl is loaded on the first call of any of these (dlopen, curl.c). When it cannot be loaded,
 * every call fails (NULL, CURLE_FAILED_INIT) and csys_curl_load_error() says why; NULL once loaded. */
const char *csys_curl_load_error(void);
CURLcode csys_curl_global_init(long flags);
CURL *csys_curl_easy_init(void);
void csys_curl_easy_cleanup(CURL *h);
void csys_curl_easy_reset(CURL *h);
CURLcode csys_curl_easy_perform(CURL *h);
const char *csys_curl_easy_strerror(CURLcode c);
const char *csys_curl_version(void);
struct curl_slist *csys_curl_slist_append(struct curl_slist *l, const char *s);
void csys_curl_slist_free_all(struct curl_slist *l);

/* ---- typed wrappers over the variadic curl_easy_setopt ---- */
typedef size_t (*csys_curl_io_cb)(char *buffer, size_t size, size_t nitems, void *userdata);
typedef int (*csys_curl_xferinfo_cb)(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
CURLcode csys_curl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode csys_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v);
CURLcode csys_curl_setopt_ptr(CURL *h, CURLoption o, const void *v);
CURLcode csys_curl_setopt_str(CURL *h, CURLoption o, const char *v);
CURLcode csys_curl_setopt_io(CURL *h, CURLoption o, csys_curl_io_cb cb);
CURLcode csys_curl_setopt_xferinfo(CURL *h, CURLoption o, csys_curl_xferinfo_cb cb);
CURLcode csys_curl_getinfo_long(CURL *h, CURLINFO info, long *v);

#endif
