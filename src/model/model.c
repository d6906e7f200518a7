#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/fileio.h"

int br_model_load_hf(br_model *m, const char *dir, br_error *err);
int br_model_load_gguf(br_model *m, const char *path, br_error *err);

int br_model_load(br_model *m, const char *path, br_error *err) {
    memset(m, 0, sizeof *m);
    m->path = br_strdup(path);
    int rc;
    if (br_is_directory(path)) {
        rc = br_model_load_hf(m, path, err);
    } else if (br_file_exists(path)) {
        rc = br_model_load_gguf(m, path, err);
    } else {
        struct stat st; /* say what is there: a FIFO or a device is no model, and is never opened */
        if (lstat(path, &st) == 0) rc = br_fail(err, "%s: is %s, not a model file or directory", path, br_file_kind(st.st_mode));
        else rc = br_fail(err, "%s: no such model file or directory", path);
    }
    if (rc) br_model_free(m);
    return rc;
}

void br_model_release_ternary(br_model *m) {
    for (int l = 0; m->layers && l < m->cfg.n_layers; l++)
        for (int k = 0; k < BR_PROJ_COUNT; k++) br_ternary_weights_free(&m->layers[l].proj[k].m);
}

void br_model_free(br_model *m) {
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            br_layer *L = &m->layers[l];
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->attn_sub_norm);
            free(L->ffn_sub_norm);
            for (int k = 0; k < BR_PROJ_COUNT; k++) br_ternary_weights_free(&L->proj[k].m);
        }
    }
    free(m->layers);
    if (m->lm_head != m->embed) free(m->lm_head);
    free(m->embed);
    free(m->final_norm);
    if (m->has_tokenizer) br_tokenizer_free(&m->tok);
    free(m->path);
    free(m->chat_template);
    memset(m, 0, sizeof *m);
}
