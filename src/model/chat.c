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

/* one message in the style's markup; role is "system", "user" or "assistant" */
static void format_message(br_chat_style s, const char *role, const char *content, char *out, size_t cap) {
    if (s == BR_CHAT_LLAMA3) snprintf(out, cap, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", role, content);
    else if (s == BR_CHAT_FALCON3) snprintf(out, cap, "<|%s|>\n%s\n", role, content);
    else snprintf(out, cap, "%c%s: %s<|eot_id|>", role[0] - 'a' + 'A', role + 1, content);
}

char *br_chat_format_messages(br_chat_style s, const char *const *roles, const char *const *contents, int n, int *has_bos) {
    static const char *const begin[3] = {"<|begin_of_text|>", "", "<|begin_of_text|>"};
    static const char *const reply[3] = {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|assistant|>\n", "Assistant: "};
    size_t cap = strlen(begin[s]) + strlen(reply[s]) + 1;
    for (int i = 0; i < n; i++) cap += strlen(roles[i]) + strlen(contents[i]) + 64;
    char *out = br_malloc(cap);
    size_t len = (size_t)snprintf(out, cap, "%s", begin[s]);
    for (int i = 0; i < n; i++) {
        format_message(s, roles[i], contents[i], out + len, cap - len);
        len += strlen(out + len);
    }
    snprintf(out + len, cap - len, "%s", reply[s]);
    *has_bos = s != BR_CHAT_FALCON3;
    return out;
}
