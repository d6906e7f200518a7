/* Fuzz target: the JSON reader and the model-config validator on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_json j;
    br_error e;
    if (br_json_parse((const char *)data, size, &j, &e) == 0) br_json_free(&j);
    br_config c;
    br_config_parse_text(&c, (const char *)data, size, "fuzz", &e);
    return 0;
}
