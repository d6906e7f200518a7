/* bitrom sweep: design-space exploration over a spec (src/sweep), locally with -j workers, as a
 * shard of a Slurm array, or under mpirun; --merge joins shard files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sweep/sweep.h"

#define MAX_OBJ 8

/* --objectives A,B,C (default energy per token, area, perplexity); names are kept in buf. */
static int parse_objectives(const cli_opts *o, char *buf, size_t cap, const char **obj, int *n) {
    snprintf(buf, cap, "%s", o->objectives ? o->objectives : "energy_per_token_uj,die_area_mm2,ppl");
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_OBJ) {
            cli_error("--objectives: at most 8 names");
            return -1;
        }
        obj[(*n)++] = t;
    }
    if (*n == 0) {
        cli_error("--objectives: give names of cost or quality fields, e.g. energy_per_token_uj,die_area_mm2,ppl");
        return -1;
    }
    return 0;
}

static int merge(const cli_opts *o, const char *const *obj, int n_obj) {
    br_sw_lines all = {0};
    br_error err;
    int rc = 0;
    for (int i = 0; rc == 0 && i < o->n_args; i++) {
        long dropped;
        size_t before = all.n;
        /* a shard killed mid-way can leave a torn last line: it is dropped, and said */
        if (br_sw_read(o->args[i], 0, 0, &all, &dropped, &err)) {
            cli_error(err.msg);
            rc = 1;
        } else if (dropped && all.n == before) {
            fprintf(stderr, "bitrom: error: %s: no sweep result lines (%ld other line(s))\n", o->args[i], dropped);
            rc = 1;
        } else if (dropped) {
            fprintf(stderr, "sweep: %s: %ld torn or invalid line(s) dropped (rerun that shard with --resume)\n", o->args[i], dropped);
        }
    }
    long differ = rc == 0 ? br_sw_sort_dedupe(&all) : 0;
    if (differ) fprintf(stderr, "sweep: %ld line(s) with a repeated key differed from the one kept (other bitrom versions?)\n", differ);
    long front = 0;
    if (rc == 0 && o->pareto && (front = br_sw_pareto(&all, obj, n_obj, &err)) < 0) {
        cli_error(err.msg);
        rc = 1;
    }
    if (rc == 0 && br_sw_write(o->out, &all, &err)) {
        cli_error(err.msg);
        rc = 1;
    }
    if (rc == 0 && o->html && br_sw_write_html(o->html, &all, obj, n_obj, &err)) {
        cli_error(err.msg);
        rc = 1;
    }
    if (rc == 0) {
        fprintf(stderr, "sweep: %zu point(s) from %d file(s) in %s", all.n, o->n_args, o->out);
        if (o->pareto) fprintf(stderr, ", %ld on the Pareto front", front);
        fprintf(stderr, "\n");
    }
    br_sw_lines_free(&all);
    return rc;
}

static int parse_shard(const cli_opts *o, const char *spec, int *i, int *n) {
    *i = 0;
    *n = 1;
    if (!o->shard) return 0;
    char *end;
    long a = strtol(o->shard, &end, 10);
    long b = *end == '/' ? strtol(end + 1, &end, 10) : -1;
    char msg[1024];
    if (*end || b < 1 || b > 1000000 || a < 0 || a >= b) {
        snprintf(msg, sizeof msg, "%s: --shard %s: must be I/N with N in 1..1000000 and the index I in 0..N-1", spec, o->shard);
        cli_error(msg);
        return -1;
    }
    *i = (int)a;
    *n = (int)b;
    return 0;
}

int cmd_sweep(const cli_opts *o) {
    const char *obj[MAX_OBJ];
    int n_obj = 0;
    char obj_buf[1024];
    if (!o->out) {
        cli_error(o->merge ? "sweep --merge needs -o ALL.jsonl" : "sweep needs SPEC.json and -o RESULTS.jsonl");
        return 2;
    }
    if ((o->pareto || o->html || o->objectives) && parse_objectives(o, obj_buf, sizeof obj_buf, obj, &n_obj)) return 2;
    if (o->merge) {
        if (o->n_args < 1) {
            cli_error("sweep --merge needs the result files to merge");
            return 2;
        }
        if (o->shard || o->mpi || o->resume || o->jobs) {
            cli_error("sweep --merge takes no --shard, --mpi, --resume or -j");
            return 2;
        }
        return merge(o, obj, n_obj);
    }
    if (o->n_args != 1) {
        cli_error(o->n_args ? "sweep takes one SPEC.json (--merge joins result files)" : "sweep needs SPEC.json and -o RESULTS.jsonl");
        return 2;
    }
    if (o->jobs < 0 || o->jobs > 1024) {
        cli_error("-j must be in 1..1024");
        return 2;
    }
    if ((o->mpi && (o->jobs > 1 || o->shard)) || (o->resume && o->force)) {
        cli_error(o->mpi ? "--mpi takes no -j or --shard (mpirun -n K sets the workers)" : "--resume and --force exclude each other");
        return 2;
    }
    if (strcmp(o->out, "-") == 0) {
        cli_error("sweep -o: a file is needed (the results are written as they come and resumed from it)");
        return 2;
    }
    br_sweep s;
    br_error err;
    if (br_sweep_load(&s, o->args[0], &err)) {
        cli_error(err.msg);
        br_sweep_free(&s);
        return 2;
    }
    br_sw_run_opts ro = {o->out, o->resume, o->force, o->threads, 0, 1, obj, o->pareto ? n_obj : 0, o->html};
    if (parse_shard(o, o->args[0], &ro.shard, &ro.n_shards)) {
        br_sweep_free(&s);
        return 2;
    }
    int rc = o->mpi ? br_sweep_mpi_run(&s, &ro, &err) : br_sweep_run_local(&s, &ro, o->jobs, &err);
    if (rc) cli_error(err.msg);
    br_sweep_free(&s);
    return rc ? 1 : 0;
}
