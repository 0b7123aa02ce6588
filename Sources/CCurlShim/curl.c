#include "CCurlShim.h"

CURLcode csys_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
CURLcode csys_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
CURLcode csys_curl_setopt_ptr(CURL *h, CURLoption o, const void *v) { return curl_easy_setopt(h, o, v); }
CURLcode csys_curl_setopt_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
CURLcode csys_curl_setopt_io(CURL *h, CURLoption o, csys_curl_io_cb cb) { return curl_easy_setopt(h, o, cb); }
CURLcode csys_curl_setopt_xferinfo(CURL *h, CURLoption o, csys_curl_xferinfo_cb cb) { return curl_easy_setopt(h, o, cb); }
CURLcode csys_curl_getinfo_long(CURL *h, CURLINFO info, long *v) { return curl_easy_getinfo(h, info, v); }
