/* Files. Inputs (fileio.c): opened without blocking, regular files only, remembered so that no
 * output replaces them. Outputs (output.c): written atomically, never through a symlink or onto a
 * device node, FIFO or directory, never half-written, temporary files removed even on SIGINT. */
#ifndef BR_FILEIO_H
#define BR_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util/error.h"

/* ---- inputs ---- */

typedef struct br_mapped_file {
    const uint8_t *data;
    size_t size;
    char *path;
} br_mapped_file;

/* Opens an input: O_NONBLOCK, so that a FIFO cannot block in open(), then fstat: anything but a
 * regular file is an error naming the path and what it is. The file's identity (st_dev, st_ino) is
 * remembered for br_is_input. Returns the descriptor (blocking again, close-on-exec) or -1. Every
 * read of an input goes through here. */
int br_open_input(const char *path, struct stat *st, br_error *err);
/* 1 if (dev, ino) is a file this process opened with br_open_input. */
int br_is_input(dev_t dev, ino_t ino);
/* "a regular file", "a FIFO", "a symbolic link", ... for messages. */
const char *br_file_kind(mode_t mode);

int br_map_file(br_mapped_file *f, const char *path, br_error *err);
void br_unmap_file(br_mapped_file *f);

/* Reads a whole file into a NUL-terminated heap buffer; max_bytes guards against hostile sizes. */
int br_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, br_error *err);

int br_file_exists(const char *path);
int br_is_directory(const char *path);

/* Joins a directory and a file name into a new heap string. */
char *br_path_join(const char *dir, const char *name);

/* ---- outputs ----
 * Every file a command writes goes through br_atomic_open, so these rules hold everywhere:
 * - "-" is stdout;
 * - a character device (/dev/null, a terminal) is written directly;
 * - a new name or an existing regular file is written to a temporary file that mkstemp creates
 *   (O_EXCL, unpredictable name) in the same directory, fsynced and renamed over the name on commit:
 *   the name holds the old content or the whole new one, never part of it;
 * - a symbolic link, directory, FIFO, socket or block device at the name is an error (rename would
 *   replace it, opening it could block or write through it), and so is a file this process read as
 *   an input (same st_dev and st_ino), and, with BR_OUT_NEW, any existing file;
 * - temporary files are removed on abort, at exit and on SIGINT, SIGTERM and SIGHUP;
 * - a write error (a full disk) is reported naming the file and the system's reason. */

enum {
    BR_OUT_NEW = 1, /* an existing target is an error: gen and convert without --force */
};

struct br_out_sink;

typedef struct br_atomic_file {
    FILE *fp;
    char *path;     /* the name as given ("-" for stdout) */
    char *tmp_path; /* the temporary file, NULL when written directly */
    struct br_out_sink *sink;
} br_atomic_file;

int br_atomic_open(br_atomic_file *f, const char *path, br_error *err);
int br_atomic_open_flags(br_atomic_file *f, const char *path, unsigned flags, br_error *err);
/* Flushes, fsyncs and renames the temporary file over the name (or flushes a direct output);
 * on failure removes it and fills err naming the path. f is closed either way. */
int br_atomic_commit(br_atomic_file *f, br_error *err);
/* Closes f and removes its temporary file; a no-op on a closed or zeroed f. */
void br_atomic_abort(br_atomic_file *f);
/* For a writer that failed: when the stream saw a write error, err becomes "PATH: write failed:
 * REASON" (the writer's own message does not know the path); otherwise err is kept. Aborts f;
 * returns -1. */
int br_atomic_fail(br_atomic_file *f, br_error *err);
/* 1 if f writes to stdout (a command then prints its report to stderr instead). */
int br_atomic_is_stdout(const br_atomic_file *f);

/* A directory output (gen's Hugging Face layout): built in a temporary directory next to the target
 * and renamed whole onto it on commit. An absent or empty target is fine; an existing model
 * directory (config.json or model.safetensors in it) is replaced only without BR_OUT_NEW; any other
 * non-empty directory, a file or a symlink at the name is an error. */
typedef struct br_output_dir {
    char *path, *tmp_path;
    int slot;
    unsigned flags;
    int n_files;
    int file_slots[8];
} br_output_dir;

int br_outdir_open(br_output_dir *d, const char *path, unsigned flags, br_error *err);
/* Creates NAME in the directory being built; write it through f and finish it with
 * br_atomic_commit (or br_atomic_abort). At most 8 files. */
int br_outdir_create(br_output_dir *d, const char *name, br_atomic_file *f, br_error *err);
/* Renames the directory onto its name (exchanging it with an existing one, which is then removed). */
int br_outdir_commit(br_output_dir *d, br_error *err);
void br_outdir_abort(br_output_dir *d);

#endif
