/* The server's requests, independent of HTTP: a JSON body (/v1/completions or /v1/chat/completions)
 * validated against the model, the loaded adapters and the configured limits, and turned into a
 * generation request with its prompt tokenized; or an OpenAI-style error (status, type, param,
 * message) saying what is wrong. Strict: unknown fields, wrong types, non-finite numbers, invalid
 * UTF-8 and unknown adapters are errors, never ignored. */
#ifndef BR_SERVE_REQUEST_H
#define BR_SERVE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "model/lora.h"
#include "model/model.h"
#include "util/error.h"
#include "util/json.h"

typedef struct br_api_error {
    int status;        /* HTTP status: 400, 401, 404, 405, 413, 503, ... */
    const char *type;  /* OpenAI's error type: invalid_request_error, ... */
    char param[64];    /* the offending field, or "" */
    char msg[512];
} br_api_error;

/* Fills e and returns -1. */
int br_api_fail(br_api_error *e, int status, const char *type, const char *param, const char *fmt, ...) BR_PRINTF(5, 6);

typedef enum { BR_ROUTE_COMPLETIONS, BR_ROUTE_CHAT } br_route_kind;

typedef struct br_serve_limits {
    size_t max_body; /* bytes of a request body */
    int max_prompt;  /* prompt tokens */
    int max_tokens;  /* tokens generated per request */
    int ctx;         /* a sequence's context: prompt + generated */
} br_serve_limits;

#define BR_MAX_STOP 4
#define BR_MAX_TOP_LOGPROBS 5

typedef struct br_gen_request {
    br_route_kind kind;
    int *prompt; /* token ids, BOS included as the model wants it */
    int n_prompt;
    int max_tokens;
    float temperature, top_p;
    uint64_t seed;
    char *stop[BR_MAX_STOP];
    int n_stop;
    int stream, include_usage;
    int logprobs; /* -1: none; else the number of alternatives per token (0..5) */
    int echo;     /* completions: the prompt is part of the answer (with its logprobs) */
    float lora[BR_MIX_MAX]; /* scale per adapter of the set; 0 = not applied */
} br_gen_request;

/* Parses and validates body[0..len). default_lora: the scales used when the request has no "lora"
 * (the server's /lora-adapters settings), NULL for all 0; seed: used when the request has none. */
int br_request_parse(const char *body, size_t len, br_route_kind kind, const br_model *m, const br_adapter_set *set,
                     const float *default_lora, const br_serve_limits *lim, uint64_t seed, br_gen_request *out, br_api_error *err);
void br_request_free(br_gen_request *r);

/* A "lora" list [{"id": N or "name", "scale": S}] (a request's field or POST /lora-adapters) into
 * one scale per adapter of the set; adapters not named get 0. */
int br_lora_list_parse(const br_json *v, const br_adapter_set *set, float *scales, br_api_error *err);

/* Parses a whole body as one JSON value: invalid UTF-8 and malformed JSON are 400s. */
int br_body_parse(const char *body, size_t len, br_json *out, br_api_error *err);

#endif
