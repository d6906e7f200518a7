/* Design-space exploration: a sweep spec (axes of values, a seeded sample, cost constraints, a
 * quality run), its points in a canonical form with a hash key, their evaluation on the cost model
 * and, where the numerics differ, perplexity on the chip backend; results as JSON lines.
 *
 * The unit of work is a "unit": one point, or, with a quality run, every point sharing the numerics
 * of the chip backend (model + the hardware keys the backend reads), so that points differing only in
 * cost parameters share one quality run. Units are what -j workers, shards and MPI ranks take. */
#ifndef BR_SWEEP_H
#define BR_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include "util/error.h"
#include "util/strbuf.h"

typedef enum { BR_SW_MODEL, BR_SW_NODE, BR_SW_CONTEXT, BR_SW_ON_DIE, BR_SW_DRAM, BR_SW_HW } br_sw_axis_kind;

typedef struct br_sw_axis {
    char name[64];  /* the spec's field: "model", "node", ..., or "hw.KEY" */
    br_sw_axis_kind kind;
    char key[48];   /* the hardware config key (node_nm, kv_on_die_tokens, dram, or KEY) */
    int n;
    char **values;  /* canonical JSON literal of each value */
    char **text;    /* the model axis: each value as a plain string */
} br_sw_axis;

struct br_sw_cache;

typedef struct br_sweep {
    char *path;              /* the spec file, for messages */
    int n_axes;
    br_sw_axis *axes;
    long sample_count;       /* 0: the full grid */
    uint64_t seed;
    int has_max_area, has_max_energy;
    double max_area_mm2, max_energy_uj;
    int has_quality;
    char *q_data;
    int q_ctx, q_chunks;
    long n_points;
    int *combo;              /* [n_points][n_axes]: value index per axis */
    long n_units;
    long *unit_first;        /* [n_units + 1]: offsets into unit_points */
    long *unit_points;
    char (*keys)[17];        /* [n_points]: the key of each point (16 hex digits) */
    struct br_sw_cache *cache; /* per process: the technology database, calibration, models, text */
} br_sweep;

/* Reads and checks a spec, enumerates (or samples) its points, checks every point's hardware config
 * and forms the units. Errors name the spec file and the field. */
int br_sweep_load(br_sweep *s, const char *path, br_error *err);
void br_sweep_free(br_sweep *s);

/* Evaluates the cost model of every point (cheap) and fails, naming the constraint, when the
 * constraints prune them all. *pruned gets the number pruned. */
int br_sweep_check_constraints(br_sweep *s, long *pruned, br_error *err);

/* Evaluates unit u: appends one JSON line per point to lines (canonical: no timing), one timing line
 * per point to timing (when not NULL), and adds the quality runs made to *quality_runs and pruned
 * points to *pruned. threads: the chip backend's threads for a quality run. */
int br_sweep_run_unit(br_sweep *s, long u, int threads, br_strbuf *lines, br_strbuf *timing, long *quality_runs, long *pruned,
                      br_error *err);

/* The bitrom version written in every line. */
extern const char br_version[];

/* ---- result files (results.c) ---- */

typedef struct br_sw_lines {
    char **line; /* each a whole line with its '\n' */
    size_t n, cap;
} br_sw_lines;

/* Key of a result line (the 16 hex digits after {"key":"), or NULL when it does not start so. */
const char *br_sw_line_key(const char *line);
/* 1 when line (with its '\n') is a whole, valid result line. */
int br_sw_line_valid(const char *line, size_t len);
/* Reads a results file: valid lines kept, torn or invalid ones dropped and counted (strict: an
 * invalid line is an error naming the file and line). A missing file is empty when missing_ok. */
int br_sw_read(const char *path, int strict, int missing_ok, br_sw_lines *out, long *dropped, br_error *err);
void br_sw_add(br_sw_lines *l, const char *line, size_t len);
void br_sw_lines_free(br_sw_lines *l);
/* Sorts by key and drops repeated keys (the first in byte order stays); returns how many lines with a
 * repeated key differed from the kept one. */
long br_sw_sort_dedupe(br_sw_lines *l);
/* Marks each line "pareto": true or false over the objectives (minimized; names of fields of "cost"
 * or "quality"); a line without every objective is not on the front. Returns the front's size, or
 * -1 with err when no line has all objectives. */
long br_sw_pareto(br_sw_lines *l, const char *const *objectives, int n_obj, br_error *err);
/* Writes the lines to path atomically (temporary file + rename). */
int br_sw_write(const char *path, const br_sw_lines *l, br_error *err);
/* The HTML page: the Pareto front over the first two objectives and each axis's effect. */
int br_sw_write_html(const char *path, const br_sw_lines *l, const char *const *objectives, int n_obj, br_error *err);

/* The append log a run writes as it goes: each line with one write() on an O_APPEND descriptor. */
int br_sw_log_open(const char *path, int truncate, br_error *err);
int br_sw_log_append(int fd, const char *path, const char *data, size_t len, br_error *err);

/* ---- running (run.c) ---- */
typedef struct br_sw_run_opts {
    const char *out;        /* results file; its run times go to OUT.timing */
    int resume, force;      /* continue an existing file / start it over */
    int threads;            /* threads of each quality run */
    int shard, n_shards;    /* this shard of n_shards (0 of 1: all) */
    const char *const *objectives; /* with n_obj > 0: mark the Pareto front */
    int n_obj;
    const char *html;       /* the HTML page, or NULL */
} br_sw_run_opts;

typedef struct br_sw_run {
    br_sweep *s;
    const br_sw_run_opts *o;
    int fd, tfd;            /* the append log and the timing log */
    char *timing_path;
    long *todo, n_todo;     /* units to run */
    long n_mine, n_done, n_resumed, quality_runs, pruned, units_done;
    double t0, last_progress;
} br_sw_run;

/* Checks the options and the constraints, reads what a --resume continues, opens the logs, lists
 * the units to run. */
int br_sw_run_begin(br_sw_run *r, br_sweep *s, const br_sw_run_opts *o, br_error *err);
/* Takes one unit's result: appends its lines and timings, prints progress (at most once a second). */
int br_sw_run_result(br_sw_run *r, const char *lines, size_t n, const char *timing, size_t tn, long quality_runs, long pruned, br_error *err);
/* Rewrites the results canonically (sorted by key, temporary file + rename), marks the Pareto front,
 * writes the HTML page, prints the summary; frees r either way. */
int br_sw_run_end(br_sw_run *r, int ok, br_error *err);
/* The whole run on this machine: in this process (jobs <= 1) or in jobs worker processes fed unit by
 * unit through pipes (a worker that dies has its unit redone by another). */
int br_sweep_run_local(br_sweep *s, const br_sw_run_opts *o, int jobs, br_error *err);

/* ---- MPI (mpi.c): rank 0 hands units to the other ranks as they finish and writes the file; an
 * error "built without MPI" unless built with MPI. */
int br_sweep_mpi_run(br_sweep *s, const br_sw_run_opts *o, br_error *err);
int br_sweep_mpi_available(void);

#endif
