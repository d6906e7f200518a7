/* The server's JSON bodies, OpenAI's shapes: completions, chat completions, their server-sent
 * event chunks, errors, and usage with the chip's bill. Independent of HTTP. */
#ifndef BR_SERVE_RESPONSE_H
#define BR_SERVE_RESPONSE_H

#include "model/model.h"
#include "serve/bill.h"
#include "serve/request.h"
#include "serve/sched.h"
#include "util/strbuf.h"

/* {"error": {"message", "type", "param", "code"}} */
void br_resp_error(br_strbuf *b, const br_api_error *e);
/* The whole answer of a finished job; bill may be NULL (not on the chip). */
void br_resp_final(br_strbuf *b, const br_job *j, const br_model *m, const char *model_name, long created, const br_chip_bill *bill);
/* One "data: {...}\n\n" event with text[0..n) (the first chat chunk also carries the role), and the
 * finish reason when given. */
void br_resp_chunk(br_strbuf *b, const br_job *j, const char *model_name, long created, const char *text, size_t n, int first, const char *finish);
/* The closing usage event (stream_options.include_usage), and "data: [DONE]\n\n". */
void br_resp_usage_chunk(br_strbuf *b, const br_job *j, const char *model_name, long created, const br_chip_bill *bill);
void br_resp_usage(br_strbuf *b, const br_job *j, const br_chip_bill *bill);

#endif
