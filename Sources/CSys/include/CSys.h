#ifndef CSYS_H
#define CSYS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- _GNU_SOURCE constants and calls that Glibc's Swift module hides ---- */
extern const int csys_O_DIRECT;
extern const int csys_SEEK_DATA;
extern const int csys_SEEK_HOLE;
/* fallocate(PUNCH_HOLE|KEEP_SIZE); returns 0 or -1 with errno set. */
int csys_punch_hole(int fd, off_t offset, off_t length);
/* BLKGETSIZE64 for a block device; returns 0 or -1 with errno set. */
int csys_block_device_size(int fd, uint64_t *size);
/* BLKDISCARD on a block device; returns 0 or -1 with errno set. */
int csys_block_discard(int fd, uint64_t offset, uint64_t length);
/* sync_file_range(SYNC_FILE_RANGE_WRITE): starts writeback of the range without waiting for it
   (no durability: a later fdatasync still waits); returns 0 or -1 with errno set. */
int csys_start_writeback(int fd, off_t offset, off_t length);

/* ---- a child process for ChildProcess.swift ---- */
/* posix_spawnp(path, argv, envp) with stdin /dev/null, stdout and stderr into new pipes whose
   read ends come back in *out_fd / *err_fd (close-on-exec); signals default, none blocked.
   Returns 0, or the errno of what failed. */
int csys_spawn(const char *path, char *const argv[], char *const envp[], pid_t *pid, int *out_fd, int *err_fd);

/* ---- CRC-32C (Castagnoli), raw register: no initial/final inversion applied here ---- */
/* Updates `crc` over `len` bytes; uses SSE4.2 when the CPU has it. */
uint32_t csys_crc32c_update(uint32_t crc, const void *data, size_t len);
/* The same register update from tables only (tests compare the instruction path with it). */
uint32_t csys_crc32c_update_portable(uint32_t crc, const void *data, size_t len);

#endif
