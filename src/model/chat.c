#include "model/chat.h"

#include <stdio.h>
#include <string.h>

br_chat_style br_chat_style_of(const char *t) {
    if (t && strstr(t, "<|start_header_id|>")) return BR_CHAT_LLAMA3;
    if (t && strstr(t, "<|user|>") && strstr(t, "<|assistant|>")) return BR_CHAT_FALCON3;
    return BR_CHAT_BITNET_PLAIN;
}

const char *br_chat_style_name(br_chat_style s) {
    return s == BR_CHAT_LLAMA3 ? "llama3" : s == BR_CHAT_FALCON3 ? "falcon3" : "bitnet-plain";
}

char *br_chat_format(br_chat_style s, const char *user, int *has_bos) {
    static const char *const fmt[3] = {
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n%s<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|user|>\n%s\n<|assistant|>\n",
        "<|begin_of_text|>User: %s<|eot_id|>Assistant: ",
    };
    size_t n = strlen(user) + strlen(fmt[s]) + 1;
    char *out = br_malloc(n);
    snprintf(out, n, fmt[s], user);
    *has_bos = s != BR_CHAT_FALCON3;
    return out;
}
