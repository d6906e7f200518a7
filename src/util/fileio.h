/* Files: read-only memory maps of inputs, whole-file reads, and atomic writes of outputs
 * (write to a temporary file in the same directory, then rename: never a half-written output). */
#ifndef BR_FILEIO_H
#define BR_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

typedef struct br_mapped_file {
    const uint8_t *data;
    size_t size;
    char *path;
} br_mapped_file;

int br_map_file(br_mapped_file *f, const char *path, br_error *err);
void br_unmap_file(br_mapped_file *f);

/* Reads a whole file into a NUL-terminated heap buffer; max_bytes guards against hostile sizes. */
int br_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, br_error *err);

int br_file_exists(const char *path);
int br_is_directory(const char *path);

/* Atomic output: br_atomic_open gives a FILE* on "<path>.tmp.<pid>"; br_atomic_commit flushes,
 * fsyncs and renames it over path; br_atomic_abort removes it. */
typedef struct br_atomic_file {
    FILE *fp;
    char *path;
    char *tmp_path;
} br_atomic_file;

int br_atomic_open(br_atomic_file *f, const char *path, br_error *err);
int br_atomic_commit(br_atomic_file *f, br_error *err);
void br_atomic_abort(br_atomic_file *f);

/* Joins a directory and a file name into a new heap string. */
char *br_path_join(const char *dir, const char *name);

#endif
