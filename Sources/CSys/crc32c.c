#include <stdint.h>
#include <string.h>
#include "CSys.h"

static uint32_t table[8][256];
static int table_ready;

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t n) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_tables();
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8; n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
/* Three streams at once. One crc32 instruction chain waits 3 cycles per 8 bytes (its latency); three
   independent chains over three consecutive strips fill those cycles, and their registers are joined
   after each triple of strips: the register after strip A then B is A's register carried over |B| zero
   bytes, XOR B's register from 0 (the raw register is linear over GF(2)). Carrying over zeros is a
   32x32 bit-matrix product, applied a byte at a time through four 256-entry tables per strip length. */
#define STRIP_LONG 8192
#define STRIP_SHORT 256
static uint32_t zeros_long[4][256], zeros_short[4][256];
static int zeros_ready;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++) if (vec & 1) sum ^= *mat;
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

/* The operator that carries a register over `len` zero bytes (`len` a power of two, at least 1). */
static void zeros_op(uint32_t *out, size_t len) {
    uint32_t a[32], b[32];
    a[0] = 0x82F63B78u;           /* one zero bit */
    for (int n = 1; n < 32; n++) a[n] = 1u << (n - 1);
    gf2_square(b, a);             /* two bits */
    gf2_square(a, b);             /* four bits */
    gf2_square(b, a);             /* one byte */
    uint32_t *cur = b, *next = a;
    for (size_t bytes = 1; bytes < len; bytes <<= 1) {
        gf2_square(next, cur);
        uint32_t *t = cur; cur = next; next = t;
    }
    memcpy(out, cur, sizeof a);
}

static void zeros_tables(uint32_t zeros[4][256], size_t len) {
    uint32_t op[32];
    zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 0; k < 4; k++) zeros[k][n] = gf2_times(op, n << (8 * k));
}

static void build_zeros(void) {
    zeros_tables(zeros_long, STRIP_LONG);
    zeros_tables(zeros_short, STRIP_SHORT);
    __atomic_store_n(&zeros_ready, 1, __ATOMIC_RELEASE);
}

static inline uint32_t carry(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static uint64_t strips(uint64_t c0, const uint8_t **pp, size_t *np, size_t strip, uint32_t zeros[4][256]) {
    const uint8_t *p = *pp;
    size_t n = *np;
    while (n >= 3 * strip) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < strip; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + strip + i, 8);
            memcpy(&w2, p + 2 * strip + i, 8);
            c0 = __builtin_ia32_crc32di(c0, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        c0 = carry(zeros, (uint32_t)c0) ^ (uint32_t)c1;
        c0 = carry(zeros, (uint32_t)c0) ^ (uint32_t)c2;
        p += 3 * strip;
        n -= 3 * strip;
    }
    *pp = p;
    *np = n;
    return c0;
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = crc;
    if (n >= 3 * STRIP_SHORT) {
        if (!__atomic_load_n(&zeros_ready, __ATOMIC_ACQUIRE)) build_zeros();
        c = strips(c, &p, &n, STRIP_LONG, zeros_long);
        c = strips(c, &p, &n, STRIP_SHORT, zeros_short);
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8; n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

/* The table-driven register update (no instructions needed): tests compare the other against it. */
uint32_t csys_crc32c_update_portable(uint32_t crc, const void *data, size_t len) {
    return crc_soft(crc, (const uint8_t *)data, len);
}

uint32_t csys_crc32c_update(uint32_t crc, const void *data, size_t len) {
#if defined(__x86_64__)
    static int has_hw = -1;
    if (has_hw < 0) {
        __builtin_cpu_init();
        has_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (has_hw) return crc_hw(crc, (const uint8_t *)data, len);
#endif
    return crc_soft(crc, (const uint8_t *)data, len);
}
