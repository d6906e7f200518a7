/* The technology database: every constant of the cost model in one place (data/tech.json, embedded
 * in the binary), each with unit, node, VDD, kind (paper, figure, summary, citation, derived,
 * assumption, calibrated), source and range. Lookups mark a constant as used so reports can list
 * exactly which assumed or calibrated numbers a result rests on. */
#ifndef BR_TECH_H
#define BR_TECH_H

#include <stdio.h>

#include "util/error.h"

typedef struct br_tech_const {
    char *name, *unit, *kind, *source;
    double value, lo, hi, node_nm, vdd;
    int used;
} br_tech_const;

typedef struct br_techdb {
    br_tech_const *c;
    int n;
} br_techdb;

/* The embedded default database. */
int br_techdb_load_default(br_techdb *db, br_error *err);
/* Applies overrides from a JSON file of the same shape; names must exist in the default. */
int br_techdb_apply_file(br_techdb *db, const char *path, br_error *err);
void br_techdb_free(br_techdb *db);

/* The value of a constant; marks it used. A missing name is a programming error (aborts). */
double br_tech(br_techdb *db, const char *name);
const br_tech_const *br_tech_find(const br_techdb *db, const char *name);
/* Sets a calibrated value (kind becomes "calibrated", source explains how). */
void br_tech_calibrate(br_techdb *db, const char *name, double value, const char *how);
void br_techdb_clear_used(br_techdb *db);

/* JSON array of the used constants whose kind is assumption, calibrated or derived. */
void br_techdb_write_assumptions_json(const br_techdb *db, FILE *fp);
void br_techdb_write_json(const br_techdb *db, FILE *fp);

/* Node scaling (relative to 65 nm), interpolated log-log between the database's nodes. */
double br_tech_logic_area_factor(br_techdb *db, double node_nm);
double br_tech_logic_energy_factor(br_techdb *db, double node_nm);
double br_tech_array_area_factor(br_techdb *db, double node_nm);

#endif
