/* Reports of the chip model: the readable text report, JSON and CSV of `bitrom chip`, the paper's
 * acceptance table (`bitrom paper`), parameter sweeps, and the self-contained HTML page. */
#ifndef BR_REPORT_H
#define BR_REPORT_H

#include <stdio.h>

#include "chip/cost.h"
#include "chip/tech.h"

void br_report_chip_text(FILE *fp, const br_cost_inputs *in, const br_cost_report *r, br_techdb *db);
void br_report_chip_json(FILE *fp, const br_cost_inputs *in, const br_cost_report *r, br_techdb *db);
/* The members of that JSON object (no braces), every cost field and the hardware config, without the
 * database's assumptions (the same for every design point): `bitrom sweep` writes them per point. */
void br_report_chip_json_fields(FILE *fp, const br_cost_inputs *in, const br_cost_report *r);
void br_report_chip_csv(FILE *fp, const br_cost_inputs *in, const br_cost_report *r);

/* One acceptance row of BITROM.md 5.3 / Figs. 1a and 5b. */
typedef struct br_paper_row {
    char name[96];
    double paper, ours, rel_diff;
    char unit[24];
    double tolerance;    /* relative, or absolute percentage points when abs_tol */
    int abs_tol, pass;
    char rests_on[200];
} br_paper_row;

/* Computes every row; *n set to the count; returns the array (caller frees). */
br_paper_row *br_paper_rows(br_techdb *db, const br_weight_stats *calib, int *n);
void br_report_paper_text(FILE *fp, const br_paper_row *rows, int n);
void br_report_paper_json(FILE *fp, const br_paper_row *rows, int n);

/* Sweep: one parameter over values; prints a table of how the headline numbers move. */
typedef struct br_sweep_point {
    char value[64];
    br_cost_report r;
} br_sweep_point;
void br_report_sweep_text(FILE *fp, const char *param, const br_sweep_point *pts, int n);
void br_report_sweep_csv(FILE *fp, const char *param, const br_sweep_point *pts, int n);

/* The HTML page: silicon size vs node (Fig. 1a), DRAM access reduction vs on-die tokens (Fig. 5b),
 * area and energy breakdowns of this design point. */
void br_report_html(FILE *fp, const br_cost_inputs *in, const br_cost_report *r, br_techdb *db);

#endif
