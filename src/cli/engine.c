#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/fileio.h"
#include "chip/chip_backend.h"
#include "rtl/rtl_backend.h"
#include "kernels/cpu_backend.h"
#include "model/lora.h"

static br_kernel_kind kernel_from_name(const char *s, int *ok) {
    *ok = 1;
    if (!s || strcmp(s, "auto") == 0) return BR_KERNEL_AUTO;
    if (strcmp(s, "scalar") == 0) return BR_KERNEL_SCALAR;
    if (strcmp(s, "avx2") == 0) return BR_KERNEL_AVX2;
    if (strcmp(s, "avx512") == 0) return BR_KERNEL_AVX512;
    if (strcmp(s, "reference") == 0) return BR_KERNEL_REFERENCE;
    *ok = 0;
    return BR_KERNEL_AUTO;
}

int cli_engine_open(cli_engine *e, const cli_opts *o, int max_seq) { return cli_engine_open_slots(e, o, max_seq, 1); }

int cli_engine_open_slots(cli_engine *e, const cli_opts *o, int max_seq, int n_slots) {
    memset(e, 0, sizeof *e);
    br_error err;
    if (!o->model) {
        cli_error("no model given (-m MODEL)");
        return -1;
    }
    const char *be = o->backend ? o->backend : "cpu";
    /* options that would be silently ignored are errors: the user meant something by them */
    if (o->hw && strcmp(be, "cpu") == 0) {
        cli_error("--hw describes the chip: it needs --backend chip or rtl");
        return -1;
    }
    if ((o->lora_bits > 0 || o->lora_act_bits >= 0) && o->n_lora == 0) {
        cli_error("--lora-bits and --lora-act-bits apply to adapters: give one with --lora");
        return -1;
    }
    if (br_model_load(&e->model, o->model, &err)) {
        cli_error(err.msg);
        return -1;
    }
    e->pool = br_pool_create(o->threads);
    if (strcmp(be, "cpu") == 0) {
        int ok;
        br_kernel_kind k = kernel_from_name(o->kernel, &ok);
        if (!ok) {
            cli_error("--kernel must be auto, avx512, avx2, scalar or reference");
            cli_engine_close(e);
            return -1;
        }
        if (!br_cpu_kernel_available(k)) {
            cli_error("--kernel: this CPU lacks the instructions of the kernel asked for (try auto)");
            cli_engine_close(e);
            return -1;
        }
        br_weight_layout layout;
        if (br_weight_layout_from_name(o->layout, &layout)) {
            cli_error("--layout must be 2bit or base3");
            cli_engine_close(e);
            return -1;
        }
        e->backend = br_cpu_backend_create(e->pool, k);
        br_cpu_backend_set_layout(e->backend, layout);
    } else if (strcmp(be, "chip") == 0) {
        br_hwconfig hw;
        br_hwconfig_default(&hw);
        if (o->hw && br_hwconfig_load(&hw, o->hw, &err)) {
            cli_error(err.msg);
            cli_engine_close(e);
            return -1;
        }
        fprintf(stderr, "chip config: ");
        br_hwconfig_write_json(&hw, stderr, 0);
        fprintf(stderr, "\n");
        e->backend = br_chip_backend_create(&hw, e->pool, e->model.cfg.n_layers);
        e->chip = e->backend;
    } else if (strcmp(be, "rtl") == 0) {
        br_hwconfig hw;
        br_hwconfig_default(&hw);
        if (o->hw && br_hwconfig_load(&hw, o->hw, &err)) {
            cli_error(err.msg);
            cli_engine_close(e);
            return -1;
        }
        e->backend = br_rtl_backend_create(&hw, e->model.cfg.n_layers, &err);
        if (!e->backend) {
            char msg[1024];
            snprintf(msg, sizeof msg, "--backend rtl: %s", err.msg);
            cli_error(msg);
            cli_engine_close(e);
            return -1;
        }
        fprintf(stderr, "rtl config: ");
        br_hwconfig_write_json(&hw, stderr, 0);
        fprintf(stderr, "\n");
        e->rtl = e->backend;
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown backend '%s' (cpu, chip, rtl)", be);
        cli_error(msg);
        cli_engine_close(e);
        return -1;
    }
    if (br_session_init_slots(&e->session, &e->model, e->backend, e->pool, max_seq, n_slots, &err)) {
        cli_error(err.msg);
        cli_engine_close(e);
        return -1;
    }
    /* the CPU kernels read only their packed copy: the model's int8 weights can go (2 GB of a 2B model) */
    if (!o->keep_weights && strcmp(e->backend->name, "cpu") == 0 && strcmp(br_cpu_kernel_name(e->backend), "reference") != 0) br_model_release_ternary(&e->model);
    if (strcmp(e->backend->name, "cpu") == 0) br_cpu_backend_calibrate(e->backend, e->prefetch_gbs); /* the prefetch hint for this machine */
    br_head_kind head = e->session.head.kind; /* auto: the checkpoint's own precision */
    if (o->head && strcmp(o->head, "auto") != 0 && br_head_kind_from_name(o->head, &head)) {
        cli_error("--head must be auto, f32, bf16, f16, q8, q6 or q4");
        cli_engine_close(e);
        return -1;
    }
    if (head != e->session.head.kind) br_session_set_head(&e->session, head);
    if (o->n_lora > 0) {
        br_adapter_set *set = br_malloc(sizeof *set);
        br_adapter_set_init(set);
        e->lora = set;
        int act = o->lora_act_bits >= 0 ? o->lora_act_bits : (o->lora_bits > 0 ? 8 : 0);
        for (int i = 0; i < o->n_lora; i++)
            if (br_adapter_set_add(set, o->lora[i], &e->model, o->lora_bits, act, &err)) {
                cli_error(err.msg);
                cli_engine_close(e);
                return -1;
            }
        e->session.hook = br_adapter_hook;
        e->session.hook_ctx = set;
    }
    return 0;
}

int cli_engine_write_stats(const cli_engine *e, const cli_opts *o) {
    if (e->chip) {
        br_chip_events ev;
        br_chip_backend_totals(e->chip, &ev);
        fprintf(stderr, "chip: %ld macros, %llu ternary MACs, %llu adds, %llu subtracts, %llu skips, %llu overflows, %llu saturations, %llu adapter-unit MACs\n",
                br_chip_backend_macros(e->chip), (unsigned long long)ev.macs, (unsigned long long)ev.adds, (unsigned long long)ev.subtracts,
                (unsigned long long)ev.skips, (unsigned long long)ev.overflows, (unsigned long long)ev.saturations,
                e->lora ? (unsigned long long)((br_adapter_set *)e->lora)->macs : 0ULL);
    }
    if (e->rtl) {
        br_vsim_counters c;
        br_rtl_backend_totals(e->rtl, &c);
        fprintf(stderr, "rtl: %llu cycles (%llu computing), %llu ternary MACs, %llu adds, %llu subtracts, %llu skips, %llu overflows, %llu saturations, %llu word-line reads\n",
                (unsigned long long)c.cycles, (unsigned long long)c.compute_cycles, (unsigned long long)c.macs, (unsigned long long)c.adds,
                (unsigned long long)c.subtracts, (unsigned long long)c.skips, (unsigned long long)c.overflows, (unsigned long long)c.saturations,
                (unsigned long long)c.wordline_reads);
    }
    if (!o->stats) return 0;
    if (!e->chip && !e->rtl) {
        cli_error("--stats needs --backend chip or rtl");
        return -1;
    }
    br_atomic_file af;
    br_error err;
    if (br_atomic_open(&af, o->stats, &err)) {
        cli_error(err.msg);
        return -1;
    }
    if (e->chip) br_chip_backend_write_stats(e->chip, af.fp);
    else br_rtl_backend_write_stats(e->rtl, af.fp);
    if (br_atomic_commit(&af, &err)) {
        cli_error(err.msg);
        return -1;
    }
    return 0;
}

void cli_engine_close(cli_engine *e) {
    if (e->lora) {
        br_adapter_set_free(e->lora);
        free(e->lora);
    }
    if (e->session.model) br_session_free(&e->session);
    if (e->backend) e->backend->destroy(e->backend);
    br_pool_destroy(e->pool);
    if (e->model.layers || e->model.path) br_model_free(&e->model);
    memset(e, 0, sizeof *e);
}
