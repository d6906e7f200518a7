/* Fuzz target: a LoRA adapter as br_adapter_load reads it, adapter_config.json and the safetensors
 * header and data together. Input: 2 bytes little-endian length N of the config (0xFFFF: no config
 * file, the authors' format), N bytes of config, the rest the .safetensors file. The model is a small
 * fake one (only its shapes are read); an accepted adapter is quantized and run on one token of
 * every matrix it targets, where a factor of the wrong size is a heap over-read. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/lora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* dim 16, q 16, kv 8, ffn 32, two layers */
static const int g_outs[BR_PROJ_COUNT] = {16, 8, 8, 16, 32, 32, 16}, g_ins[BR_PROJ_COUNT] = {16, 16, 16, 16, 16, 16, 32};

static void fake_model(br_model *m, br_layer *layers) {
    memset(m, 0, sizeof *m);
    memset(layers, 0, 2 * sizeof *layers);
    m->cfg.n_layers = 2;
    m->layers = layers;
    for (int l = 0; l < 2; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            layers[l].proj[p].m.rows = g_outs[p];
            layers[l].proj[p].m.cols = g_ins[p];
            layers[l].proj[p].m.layer = l;
            layers[l].proj[p].m.proj = (br_proj)p;
        }
}

static int put(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(d, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void exercise(br_adapter *a, const br_model *m) {
    br_adapter_set set;
    br_adapter_set_init(&set);
    set.items = a;
    set.n = 1;
    set.active = 0;
    float x[32], y[32];
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 7) - 3.0f;
    static const int bits[3][2] = {{0, 0}, {4, 8}, {BR_LORA_TERNARY, 4}};
    br_error e;
    for (int q = 0; q < 3; q++) {
        if (br_adapter_quantize(a, bits[q][0], bits[q][1], &e)) continue;
        for (int l = 0; l < 2; l++)
            for (int p = 0; p < BR_PROJ_COUNT; p++) {
                memset(y, 0, sizeof y);
                br_adapter_hook(&set, &m->layers[l].proj[p].m, x, 1, 0, y);
            }
    }
    free(set.scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const size_t n_cfg = (size_t)data[0] | (size_t)data[1] << 8;
    const int have_cfg = n_cfg != 0xFFFF;
    if (have_cfg && n_cfg > size - 2) return 0;
    const uint8_t *cfg = data + 2, *st = data + 2 + (have_cfg ? n_cfg : 0);
    const size_t n_st = size - 2 - (have_cfg ? n_cfg : 0);
    char dir[512], cfg_path[600], st_path[600];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/bitrom-fuzz-peft-%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    mkdir(dir, 0700);
    snprintf(cfg_path, sizeof cfg_path, "%s/adapter_config.json", dir);
    snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", dir);
    unlink(cfg_path);
    if ((have_cfg && put(cfg_path, cfg, n_cfg)) || put(st_path, st, n_st)) return 0;
    br_model m;
    br_layer layers[2];
    fake_model(&m, layers);
    br_adapter a;
    br_error e;
    if (br_adapter_load(&a, "fuzz", dir, &m, &e) == 0) {
        exercise(&a, &m);
        br_adapter_free(&a);
    }
    unlink(cfg_path);
    unlink(st_path);
    rmdir(dir);
    return 0;
}
