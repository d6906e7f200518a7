/* Chat prompts: the model's template when it has one (tokenizer_config.json chat_template or GGUF
 * tokenizer.chat_template), recognised for the common cases (Llama 3, Falcon3), else the plain
 * bitnet-b1.58-2B-4T format "<|begin_of_text|>User: ...<|eot_id|>Assistant: ". */
#ifndef BR_CHAT_H
#define BR_CHAT_H

#include "model/model.h"

typedef enum { BR_CHAT_LLAMA3, BR_CHAT_FALCON3, BR_CHAT_BITNET_PLAIN } br_chat_style;

br_chat_style br_chat_style_of(const char *template_text);
const char *br_chat_style_name(br_chat_style s);
/* A heap string with the user message wrapped for generation; *has_bos is set when the text already
 * starts with the BOS token's text. */
char *br_chat_format(br_chat_style s, const char *user, int *has_bos);
/* A conversation (roles "system", "user", "assistant", in order) wrapped for the assistant's next
 * reply; one user message gives exactly br_chat_format's text. */
char *br_chat_format_messages(br_chat_style s, const char *const *roles, const char *const *contents, int n, int *has_bos);

#endif
