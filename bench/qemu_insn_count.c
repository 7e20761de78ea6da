/* Instruction counts per function under qemu-user (TCG plugin API v1, QEMU 7.2 as Debian 12
 * ships it; Debian ships no plugins, so this is a small one of our own): for every executed
 * guest instruction, counts it against its function (symbol) as scalar or vector (an operand
 * vN.<arrangement>, a q register, or a SIMD&FP mnemonic on vector registers), and prints the
 * top functions by count at exit. Used for BENCHMARKS.md's aarch64 section (no aarch64
 * hardware here, so no timings: instruction counts instead).
 *
 *   cc -O2 -shared -fPIC -o /tmp/libinsncount.so bench/qemu_insn_count.c
 *   qemu-aarch64 -L /usr/aarch64-linux-gnu -plugin /tmp/libinsncount.so,arg=40 -d plugin \
 *       target/aarch64-unknown-linux-gnu/release/examples/bit_identity /dev/null
 *
 * arg: how many functions to print (default 30). Counters are not atomic: run one thread. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The declarations used, from QEMU's include/qemu/qemu-plugin.h (API version 1). */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
const char *qemu_plugin_insn_symbol(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

struct counts {
    const char *symbol; /* QEMU's static string for the symbol (or NULL: unknown) */
    uint64_t total, vector, fma_vector;
};

#define SLOTS (1 << 16)
static struct counts table[SLOTS];
static int n_print = 30;

static struct counts *slot(const char *symbol) {
    uintptr_t h = ((uintptr_t)symbol * 0x9E3779B97F4A7C15ull) >> 48;
    for (;; h++) {
        struct counts *c = &table[h & (SLOTS - 1)];
        if (c->symbol == symbol) return c;
        if (c->symbol == NULL) {
            c->symbol = symbol;
            return c;
        }
    }
}

/* Vector (Advanced SIMD) instruction: an operand vN.<T> or a whole q register. */
static int is_vector(const char *d) {
    for (const char *p = d; *p; p++) {
        if ((*p == 'v' || *p == 'q') && (p == d || p[-1] == ' ' || p[-1] == ',' || p[-1] == '{' || p[-1] == '[')) {
            const char *q = p + 1;
            if (*q < '0' || *q > '9') continue;
            while (*q >= '0' && *q <= '9') q++;
            if (*p == 'v' && *q == '.') return 1;
            if (*p == 'q' && (*q == ',' || *q == ' ' || *q == 0 || *q == '}')) return 1;
        }
    }
    return 0;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const char *symbol = qemu_plugin_insn_symbol(insn);
        struct counts *c = slot(symbol ? symbol : "(unknown)");
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &c->total, 1);
        char *d = qemu_plugin_insn_disas(insn);
        if (d && is_vector(d)) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &c->vector, 1);
            if (strncmp(d, "fmla", 4) == 0 || strncmp(d, "fmls", 4) == 0) {
                qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &c->fma_vector, 1);
            }
        }
        free(d);
    }
}

static int by_total(const void *a, const void *b) {
    uint64_t x = ((const struct counts *)a)->total, y = ((const struct counts *)b)->total;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void at_exit(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    uint64_t total = 0, vector = 0;
    for (int i = 0; i < SLOTS; i++) {
        total += table[i].total;
        vector += table[i].vector;
    }
    qsort(table, SLOTS, sizeof table[0], by_total);
    char line[1024];
    snprintf(line, sizeof line, "insns total %llu, vector %llu (%.1f%%)\n%14s %14s %6s %12s  function\n",
             (unsigned long long)total, (unsigned long long)vector, 100.0 * (double)vector / (double)(total ? total : 1),
             "insns", "vector", "%vec", "fmla/fmls");
    qemu_plugin_outs(line);
    for (int i = 0; i < n_print && i < SLOTS && table[i].total; i++) {
        snprintf(line, sizeof line, "%14llu %14llu %5.1f%% %12llu  %.200s\n", (unsigned long long)table[i].total,
                 (unsigned long long)table[i].vector, 100.0 * (double)table[i].vector / (double)table[i].total,
                 (unsigned long long)table[i].fma_vector, table[i].symbol);
        qemu_plugin_outs(line);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc,
                                                               char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "arg=", 4) == 0) n_print = atoi(argv[i] + 4);
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
