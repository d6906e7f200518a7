/* Fuzz target: the safetensors parser, then every float tensor converted and every U8 tensor
 * unpacked as ternary, as the model loader would. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/format/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_tensor_set ts;
    memset(&ts, 0, sizeof ts);
    ts.files = br_calloc(1, sizeof *ts.files);
    ts.files[0].data = data;
    ts.files[0].size = size;
    ts.files[0].path = br_strdup("fuzz.safetensors");
    ts.n_files = 1;
    br_error e;
    if (br_safetensors_parse(&ts, 0, &e) == 0) {
        for (size_t i = 0; i < ts.n_tensors; i++) {
            const br_tensor *t = &ts.tensors[i];
            size_t n = (size_t)br_tensor_numel(t);
            if (n > (1u << 20)) continue;
            if (t->dtype == BR_DT_U8 && t->ndim == 2) {
                int8_t *w = br_malloc((size_t)t->shape[0] * 4 * (size_t)t->shape[1] + 1);
                br_unpack_hf_ternary(t->data, (int)t->shape[0] * 4, (int)t->shape[1], w, t->name, &e);
                free(w);
            } else {
                float *f = br_malloc(n * sizeof(float) + 1);
                br_tensor_to_f32(t, f, n, &e);
                free(f);
            }
        }
    }
    free(ts.files[0].path);
    ts.files[0].path = NULL;
    ts.files[0].data = NULL; /* not ours to unmap */
    ts.files[0].size = 0;
    br_tensors_free(&ts);
    return 0;
}
