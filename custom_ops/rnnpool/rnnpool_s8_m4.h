/* Cortex-M4 assembly for the int8 op's hottest loops, included by
 * rnnpool_s8.c only where RNNPOOL_ASM; the C loops there compute the same
 * integers elsewhere, and for every case these do not cover.
 *
 * 1. The pair step: one FastGRNN step of two states (a, b) with the smooth
 * activations (sigmoid gate, tanh update), for the cells the prepared buffer
 * calls `fast` (Q14 states, U in form S without saturation) and h = 16 or 8.
 *
 * Why assembly: fused, the step needs more live values (four accumulators,
 * eight constants, inputs, pointers) than the M4 has registers, and GCC spills
 * them one by one (the C version of this fusion was slower than the two-phase
 * step). Here the constants sit in a context block and are reloaded in groups
 * (LDM/LDRD), so per pair of U rows the dot products flow straight into the
 * four unit updates without the (g, v) round trip through memory.
 *
 * U.h of later rows still needs the old states, so both are first copied
 * (LDM/STM) into the work area; the new states collect next to them and are
 * copied back at the end. Work layout (int16): [old a | old b | new a | new b],
 * HP each, so one pointer with immediate offsets reaches all four.
 *
 * Per unit and state, in the order of docs/quantization.md (sections 3, 5, 6):
 *   r = SMMLA(acc, M, round) >> post;  g = r + gate input;  v = r + update input
 *   z = sigmoid(g), c = tanh(v)        packed tables: SSAT, ASR, UXTB/AND, LDR, SMLATB, SXTH, ADD
 *   h' = ssat16(((z*h + 8192) >> 14) + (((B + ((A*16384 + 8192 - A*z) >> 14)) * c + 8192) >> 14))
 *        (with one shift, see RNNPOOL_FZ_UNIT)
 * Registers: r0 the context, all others but r7 clobbered (r7 is the Thumb
 * frame pointer in builds that keep one). */
#ifndef RNNPOOL_S8_M4_H_
#define RNNPOOL_S8_M4_H_

#include <stdint.h>

/* The cell's constants, built once per eval and copied into each context;
 * the asm addresses the fields by these byte offsets. */
typedef struct {
  int32_t a;          /*  0: A (LDM group of the update: a, a_round, b, 8192, x) */
  int32_t a_round;    /*  4: A*16384 + 8192 */
  int32_t b;          /*  8: B */
  int32_t k8192;      /* 12 */
  int16_t* x;         /* 16: not a constant: the work pointer of the iteration, set by the asm */
  const int32_t* sig; /* 20: sigmoid table + 256 entries (LDRD pairs: sig, tnh; 128, 64) */
  const int32_t* tnh; /* 24: tanh table + 256 entries */
  int32_t k128;       /* 28 */
  int32_t k64;        /* 32 */
  const int16_t* u;   /* 36: U, interleaved */
  const void* ur;     /* 40: U's rnnpool_urow records */
} rnnpool_step_consts;

/* The caller sets base, ia, ib, sa, sb; the asm sets and advances the rest. */
typedef struct {
  rnnpool_step_consts k; /*  0 */
  const int16_t* w;      /* 44: next U row pair (LDRD: w, base) */
  int16_t* base;         /* 48: work, 8*HP bytes: old a, old b, new a, new b */
  const void* row;       /* 52: rnnpool_urow of the iteration's first row (LDRD: row, ia) */
  const int32_t* ia;     /* 56: inputs of a (RNN1 same-pixel pairs: of both) */
  const int32_t* ib;     /* 60: inputs of b (RNN2) */
  int16_t* x_end;        /* 64: base + HP */
  int16_t* sa;           /* 68 */
  int16_t* sb;           /* 72 */
} rnnpool_step_ctx;

typedef char rnnpool_step_ctx_is_32bit[sizeof(rnnpool_step_ctx) == 76 ? 1 : -1];

#define RNNPOOL_STR_(x) #x
#define RNNPOOL_STR(x) RNNPOOL_STR_(x)

/* clang-format off */

/* HP int16 (HP/2 words) through registers: one LDM, one STM. */
#define RNNPOOL_REGS_16 "{r2, r3, r4, r5, r6, r8, r9, r10}"
#define RNNPOOL_REGS_8 "{r2, r3, r4, r5}"

/* U.h of both states for one pair of rows, from zero: r1 = weights
 * (advanced), r2 = base (old a at 0, old b at 2*HP bytes); out r3, r4 =
 * a.(j, j+1), r5, r6 = b.(j, j+1). Per two input pairs: one LDRD per state,
 * two of weights, eight SMLADs. */
#define RNNPOOL_FZ_LOADS(off, hp)                                  \
  "ldrd r8, r9, [r1], #8\n\t"                                      \
  "ldrd r10, r11, [r2, #" #off "]\n\t"                             \
  "ldrd r12, lr, [r2, #(" #off "+2*" RNNPOOL_STR(hp) ")]\n\t"
#define RNNPOOL_FZ_MAC(op, x, y, acc0, acc1, acc2, acc3)           \
  #op " r3, r8, " #x acc0 "\n\t"                                   \
  #op " r4, r9, " #x acc1 "\n\t"                                   \
  #op " r5, r8, " #y acc2 "\n\t"                                   \
  #op " r6, r9, " #y acc3 "\n\t"
#define RNNPOOL_FZ_ACC0 RNNPOOL_FZ_MAC(smlad, r10, r12, ", r3", ", r4", ", r5", ", r6")
#define RNNPOOL_FZ_ACC1 RNNPOOL_FZ_MAC(smlad, r11, lr, ", r3", ", r4", ", r5", ", r6")
#define RNNPOOL_FZ_FIRST(hp)                                       \
  RNNPOOL_FZ_LOADS(0, hp)                                          \
  RNNPOOL_FZ_MAC(smuad, r10, r12, "", "", "", "")                  \
  "ldrd r8, r9, [r1], #8\n\t"                                      \
  RNNPOOL_FZ_ACC1
#define RNNPOOL_FZ_NEXT(off, hp)                                   \
  RNNPOOL_FZ_LOADS(off, hp)                                        \
  RNNPOOL_FZ_ACC0                                                  \
  "ldrd r8, r9, [r1], #8\n\t"                                      \
  RNNPOOL_FZ_ACC1
#define RNNPOOL_FZ_DOT_8 RNNPOOL_FZ_FIRST(8) RNNPOOL_FZ_NEXT(8, 8)
#define RNNPOOL_FZ_DOT_16 \
  RNNPOOL_FZ_FIRST(16) RNNPOOL_FZ_NEXT(8, 16) RNNPOOL_FZ_NEXT(16, 16) RNNPOOL_FZ_NEXT(24, 16)
#define RNNPOOL_FZ_DOT(hp)                                         \
  "ldrd r1, r2, [r0, #44]\n\t"                                     \
  RNNPOOL_FZ_DOT_##hp                                              \
  "str r1, [r0, #44]\n\t"

/* Requantization of row u of the iteration for both states (accumulators
 * ra, rb; r1 = the iteration's first row record: mult, post, round_or_lo at
 * +0, +4, +8, records 32 bytes apart). */
#define RNNPOOL_FZ_RQ_LOAD_0 "ldm r1, {r8, r9, r10}\n\t"
#define RNNPOOL_FZ_RQ_LOAD_N(u)                                    \
  "ldrd r8, r9, [r1, #(32*" #u ")]\n\t"                            \
  "ldr r10, [r1, #(32*" #u "+8)]\n\t"
#define RNNPOOL_FZ_RQ_LOAD_1 RNNPOOL_FZ_RQ_LOAD_N(1)
#define RNNPOOL_FZ_RQ_LOAD_2 RNNPOOL_FZ_RQ_LOAD_N(2)
#define RNNPOOL_FZ_RQ_LOAD_3 RNNPOOL_FZ_RQ_LOAD_N(3)
#define RNNPOOL_FZ_RQ_LOAD_4 RNNPOOL_FZ_RQ_LOAD_N(4)
#define RNNPOOL_FZ_RQ_LOAD_5 RNNPOOL_FZ_RQ_LOAD_N(5)
#define RNNPOOL_FZ_RQ_LOAD_6 RNNPOOL_FZ_RQ_LOAD_N(6)
#define RNNPOOL_FZ_RQ_LOAD_7 RNNPOOL_FZ_RQ_LOAD_N(7)
#define RNNPOOL_FZ_RQ(u, ra, rb)                                   \
  RNNPOOL_FZ_RQ_LOAD_##u                                           \
  "smmla " #ra ", " #ra ", r8, r10\n\t"                            \
  "smmla " #rb ", " #rb ", r8, r10\n\t"                            \
  "asr " #ra ", " #ra ", r9\n\t"                                   \
  "asr " #rb ", " #rb ", r9\n\t"

/* The gate and update pre-activations of both states from the requantized
 * U.h (ra, rb) and one (gate, update) input pair in r8, r9:
 * r10 = ra + r8, ra += r9, r8 = rb + r8, rb += r9. */
#define RNNPOOL_FZ_BIAS_PAIRS(ra, rb) \
  "add r10, " #ra ", r8\n\t"          \
  "add " #ra ", " #ra ", r9\n\t"      \
  "add r8, " #rb ", r8\n\t"           \
  "add " #rb ", " #rb ", r9\n\t"

/* Input halves, RNN1's same-pixel pairs: ia[2u], ia[2u+1] are (gate, update)
 * with the biases in, shared by a and b. Out: r10 = g_a, ra = v_a, r8 = g_b,
 * rb = v_b. */
#define RNNPOOL_FZ_IN_SHARED(u, ra, rb)                            \
  "ldrd r1, r2, [r0, #52]\n\t"                                     \
  RNNPOOL_FZ_RQ(u, ra, rb)                                         \
  "ldrd r8, r9, [r2, #(8*" #u ")]\n\t"                             \
  RNNPOOL_FZ_BIAS_PAIRS(ra, rb)

/* Input halves, RNN2: one projected value per unit and state (ia[u], ib[u]),
 * the biases from the row record (+16, +20). Same outputs. */
#define RNNPOOL_FZ_IN_RAW(u, ra, rb)                               \
  "ldr r1, [r0, #52]\n\t"                                          \
  RNNPOOL_FZ_RQ(u, ra, rb)                                         \
  "ldrd r2, r12, [r0, #56]\n\t"                                    \
  "ldr r2, [r2, #(4*" #u ")]\n\t"                                  \
  "ldr r12, [r12, #(4*" #u ")]\n\t"                                \
  "add " #ra ", " #ra ", r2\n\t"                                   \
  "add " #rb ", " #rb ", r12\n\t"                                  \
  "ldrd r8, r9, [r1, #(32*" #u "+16)]\n\t"                         \
  RNNPOOL_FZ_BIAS_PAIRS(ra, rb)

/* Input halves, RNN1's pairs on two pixels (the recompute driver): (gate,
 * update) pairs with the biases in, ia[2u], ia[2u+1] for a and ib[2u],
 * ib[2u+1] for b. Same outputs. */
#define RNNPOOL_FZ_IN_APART(u, ra, rb)                             \
  "ldr r1, [r0, #52]\n\t"                                          \
  RNNPOOL_FZ_RQ(u, ra, rb)                                         \
  "ldrd r2, r12, [r0, #56]\n\t"                                    \
  "ldrd r8, r9, [r2, #(8*" #u ")]\n\t"                             \
  "add r10, " #ra ", r8\n\t"                                       \
  "add " #ra ", " #ra ", r9\n\t"                                   \
  "ldrd r8, r9, [r12, #(8*" #u ")]\n\t"                            \
  "add r8, " #rb ", r8\n\t"                                        \
  "add " #rb ", " #rb ", r9\n\t"

/* z = sigmoid(reg) in place (r1 = table + 256, r9 = 128, r12 scratch). */
#define RNNPOOL_FZ_SIGMOID(reg)                                    \
  "ssat " #reg ", #17, " #reg "\n\t"                               \
  "asr r12, " #reg ", #8\n\t"                                      \
  "uxtb " #reg ", " #reg "\n\t"                                    \
  "ldr r12, [r1, r12, lsl #2]\n\t"                                 \
  "smlatb " #reg ", r12, " #reg ", r9\n\t"                         \
  "sxth r12, r12\n\t"                                              \
  "add " #reg ", r12, " #reg ", asr #8\n\t"

/* c = tanh(reg) in place (r2 = table + 256, r11 = 64, r12 scratch). */
#define RNNPOOL_FZ_TANH(reg)                                       \
  "ssat " #reg ", #16, " #reg "\n\t"                               \
  "asr r12, " #reg ", #7\n\t"                                      \
  "and " #reg ", " #reg ", #127\n\t"                               \
  "ldr r12, [r2, r12, lsl #2]\n\t"                                 \
  "smlatb " #reg ", r12, " #reg ", r11\n\t"                        \
  "sxth r12, r12\n\t"                                              \
  "add " #reg ", r12, " #reg ", asr #7\n\t"

/* h' from z, c and the old h at [lr + old], stored at [lr + new]
 * (r1 = A, r2 = A*16384 + 8192, r9 = B, r11 = 8192, r12 scratch). The two
 * rounded terms share one shift: with t = z*h + 8192, keep = t >> 14 and
 * keep*16384 + 8192 is t with its low 14 bits replaced by 8192 (BFI), so
 * keep + ((coef*c + 8192) >> 14) = (coef*c + keep*16384 + 8192) >> 14 (no
 * overflow: both terms are at most 2^29 in magnitude); SSAT shifts. */
#define RNNPOOL_FZ_UNIT(z, c, old, new)                            \
  "ldrsh r12, [lr, #(" old ")]\n\t"                                \
  "mla r12, " #z ", r12, r11\n\t"                                  \
  "bfi r12, r11, #0, #14\n\t"                                      \
  "mls " #z ", " #z ", r1, r2\n\t"                                 \
  "add " #z ", r9, " #z ", asr #14\n\t"                            \
  "mla r12, " #z ", " #c ", r12\n\t"                               \
  "ssat r12, #16, r12, asr #14\n\t"                                \
  "strh r12, [lr, #(" new ")]\n\t"

/* Row u of the iteration (u = 0..3) for both states: accumulators ra (a), rb (b). */
#define RNNPOOL_FZ_ROW(in, u, ra, rb, hp)                          \
  in(u, ra, rb)                                                    \
  "ldrd r1, r2, [r0, #20]\n\t"                                     \
  "ldrd r9, r11, [r0, #28]\n\t"                                    \
  RNNPOOL_FZ_SIGMOID(r10)                                          \
  RNNPOOL_FZ_TANH(ra)                                              \
  RNNPOOL_FZ_SIGMOID(r8)                                           \
  RNNPOOL_FZ_TANH(rb)                                              \
  "ldm r0, {r1, r2, r9, r11, lr}\n\t"                              \
  RNNPOOL_FZ_UNIT(r10, ra, "2*" #u, "4*" RNNPOOL_STR(hp) "+2*" #u) \
  RNNPOOL_FZ_UNIT(r8, rb, "2*" RNNPOOL_STR(hp) "+2*" #u, "6*" RNNPOOL_STR(hp) "+2*" #u)

/* One iteration: four rows (two dot products) for h = 8, eight for h = 16
 * (two iterations of the loop: fewer pointer updates for the bigger code). */
#define RNNPOOL_FZ_ROWS_4(in, hp)                                  \
  RNNPOOL_FZ_DOT(hp)                                               \
  RNNPOOL_FZ_ROW(in, 0, r3, r5, hp)                                \
  RNNPOOL_FZ_ROW(in, 1, r4, r6, hp)                                \
  RNNPOOL_FZ_DOT(hp)                                               \
  RNNPOOL_FZ_ROW(in, 2, r3, r5, hp)                                \
  RNNPOOL_FZ_ROW(in, 3, r4, r6, hp)
#define RNNPOOL_FZ_ROWS_8(in, hp)                                  \
  RNNPOOL_FZ_ROWS_4(in, hp)                                        \
  RNNPOOL_FZ_DOT(hp)                                               \
  RNNPOOL_FZ_ROW(in, 4, r3, r5, hp)                                \
  RNNPOOL_FZ_ROW(in, 5, r4, r6, hp)                                \
  RNNPOOL_FZ_DOT(hp)                                               \
  RNNPOOL_FZ_ROW(in, 6, r3, r5, hp)                                \
  RNNPOOL_FZ_ROW(in, 7, r4, r6, hp)
#define RNNPOOL_FZ_ROWS_OF_8 4
#define RNNPOOL_FZ_ROWS_OF_16 8

/* The whole step; `in` picks the inputs, `ia_step` their bytes per row (of
 * a's and of b's). */
#define RNNPOOL_FZ_STEP(hp, in, ia_step)                           \
  RNNPOOL_FZ_STEP_ROWS(hp, in, ia_step, RNNPOOL_FZ_ROWS_OF_##hp)
#define RNNPOOL_FZ_STEP_ROWS(hp, in, ia_step, rows)                \
  RNNPOOL_FZ_STEP_(hp, in, ia_step, rows)
#define RNNPOOL_FZ_STEP_(hp, in, ia_step, rows)                    \
  /* iteration pointers: w = u, row = ur, x = base, x_end */       \
  "ldrd r1, r2, [r0, #36]\n\t"                                     \
  "ldr lr, [r0, #48]\n\t"                                          \
  "str r1, [r0, #44]\n\t"                                          \
  "str r2, [r0, #52]\n\t"                                          \
  "str lr, [r0, #16]\n\t"                                          \
  "add r1, lr, #(2*" RNNPOOL_STR(hp) ")\n\t"                       \
  "str r1, [r0, #64]\n\t"                                          \
  /* the old states into the work area */                          \
  "ldr r1, [r0, #68]\n\t"                                          \
  "ldm r1, " RNNPOOL_REGS_##hp "\n\t"                              \
  "stm lr!, " RNNPOOL_REGS_##hp "\n\t"                             \
  "ldr r1, [r0, #72]\n\t"                                          \
  "ldm r1, " RNNPOOL_REGS_##hp "\n\t"                              \
  "stm lr, " RNNPOOL_REGS_##hp "\n\t"                              \
  "1:\n\t"                                                         \
  RNNPOOL_FZ_ROWS_##rows(in, hp)                                   \
  /* the next rows (lr = x) */                                     \
  "ldrd r1, r2, [r0, #52]\n\t"                                     \
  "ldrd r3, r4, [r0, #60]\n\t"                                     \
  "add r1, r1, #(32*" #rows ")\n\t"                                 \
  "add r2, r2, #(" #rows "*" #ia_step ")\n\t"                       \
  "add r3, r3, #(" #rows "*" #ia_step ")\n\t"                       \
  "add lr, lr, #(2*" #rows ")\n\t"                                  \
  "strd r1, r2, [r0, #52]\n\t"                                     \
  "str r3, [r0, #60]\n\t"                                          \
  "str lr, [r0, #16]\n\t"                                          \
  "cmp lr, r4\n\t"                                                 \
  "bne 1b\n\t"                                                     \
  /* the new states back (lr = base + 2*HP bytes; new a at 4*HP) */\
  "add lr, lr, #(2*" RNNPOOL_STR(hp) ")\n\t"                       \
  "ldr r1, [r0, #68]\n\t"                                          \
  "ldm lr!, " RNNPOOL_REGS_##hp "\n\t"                             \
  "stm r1, " RNNPOOL_REGS_##hp "\n\t"                              \
  "ldr r1, [r0, #72]\n\t"                                          \
  "ldm lr, " RNNPOOL_REGS_##hp "\n\t"                              \
  "stm r1, " RNNPOOL_REGS_##hp "\n\t"

#define RNNPOOL_FZ_DEFINE(name, hp, in, ia_step)                                              \
  static void name(rnnpool_step_ctx* ctx) {                                                   \
    register rnnpool_step_ctx* r0 __asm__("r0") = ctx;                                        \
    __asm__ volatile(RNNPOOL_FZ_STEP(hp, in, ia_step)                                         \
                     : "+r"(r0)                                                               \
                     :                                                                        \
                     : "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12",   \
                       "lr", "cc", "memory");                                                 \
  }

/* RNN1, same-pixel pairs (the cached driver): (gate, update) pairs, 8 bytes per row. */
RNNPOOL_FZ_DEFINE(rnnpool_step_pair_shared_16, 16, RNNPOOL_FZ_IN_SHARED, 8)
RNNPOOL_FZ_DEFINE(rnnpool_step_pair_shared_8, 8, RNNPOOL_FZ_IN_SHARED, 8)
/* RNN1, pairs on two pixels (the recompute driver): 8 bytes per row each. */
RNNPOOL_FZ_DEFINE(rnnpool_step_pair_apart_16, 16, RNNPOOL_FZ_IN_APART, 8)
RNNPOOL_FZ_DEFINE(rnnpool_step_pair_apart_8, 8, RNNPOOL_FZ_IN_APART, 8)
/* RNN2: one value per unit and state, 4 bytes per row. */
RNNPOOL_FZ_DEFINE(rnnpool_step_pair_raw_16, 16, RNNPOOL_FZ_IN_RAW, 4)
RNNPOOL_FZ_DEFINE(rnnpool_step_pair_raw_8, 8, RNNPOOL_FZ_IN_RAW, 4)

/* clang-format off */

/* 1a. The same step for one state (the cached driver's odd segment at a
 * pixel): U.h of one state (two accumulators per pair of rows: r3, r4), the
 * inputs of RNN1, the same update; the work layout of the pair step with b
 * unused. */
#define RNNPOOL_FS_LOADS(off)                                      \
  "ldrd r8, r9, [r1], #8\n\t"                                      \
  "ldrd r10, r11, [r2, #" #off "]\n\t"
#define RNNPOOL_FS_FIRST                                           \
  RNNPOOL_FS_LOADS(0)                                              \
  "smuad r3, r8, r10\n\t"                                          \
  "smuad r4, r9, r10\n\t"                                          \
  "ldrd r8, r9, [r1], #8\n\t"                                      \
  "smlad r3, r8, r11, r3\n\t"                                      \
  "smlad r4, r9, r11, r4\n\t"
#define RNNPOOL_FS_NEXT(off)                                       \
  RNNPOOL_FS_LOADS(off)                                            \
  "smlad r3, r8, r10, r3\n\t"                                      \
  "smlad r4, r9, r10, r4\n\t"                                      \
  "ldrd r8, r9, [r1], #8\n\t"                                      \
  "smlad r3, r8, r11, r3\n\t"                                      \
  "smlad r4, r9, r11, r4\n\t"
#define RNNPOOL_FS_DOT_8 RNNPOOL_FS_FIRST RNNPOOL_FS_NEXT(8)
#define RNNPOOL_FS_DOT_16 RNNPOOL_FS_DOT_8 RNNPOOL_FS_NEXT(16) RNNPOOL_FS_NEXT(24)
#define RNNPOOL_FS_DOT(hp)                                         \
  "ldrd r1, r2, [r0, #44]\n\t"                                     \
  RNNPOOL_FS_DOT_##hp                                              \
  "str r1, [r0, #44]\n\t"
#define RNNPOOL_FS_ROW(u, ra, hp)                                  \
  "ldrd r1, r2, [r0, #52]\n\t"                                     \
  RNNPOOL_FZ_RQ_LOAD_##u                                           \
  "smmla " #ra ", " #ra ", r8, r10\n\t"                            \
  "asr " #ra ", " #ra ", r9\n\t"                                   \
  "ldrd r8, r9, [r2, #(8*" #u ")]\n\t"                             \
  "add r10, " #ra ", r8\n\t"                                       \
  "add " #ra ", " #ra ", r9\n\t"                                   \
  "ldrd r1, r2, [r0, #20]\n\t"                                     \
  "ldrd r9, r11, [r0, #28]\n\t"                                    \
  RNNPOOL_FZ_SIGMOID(r10)                                          \
  RNNPOOL_FZ_TANH(ra)                                              \
  "ldm r0, {r1, r2, r9, r11, lr}\n\t"                              \
  RNNPOOL_FZ_UNIT(r10, ra, "2*" #u, "4*" RNNPOOL_STR(hp) "+2*" #u)
#define RNNPOOL_FS_ROWS_4(hp)                                      \
  RNNPOOL_FS_DOT(hp)                                               \
  RNNPOOL_FS_ROW(0, r3, hp)                                        \
  RNNPOOL_FS_ROW(1, r4, hp)                                        \
  RNNPOOL_FS_DOT(hp)                                               \
  RNNPOOL_FS_ROW(2, r3, hp)                                        \
  RNNPOOL_FS_ROW(3, r4, hp)
#define RNNPOOL_FS_ROWS_8(hp)                                      \
  RNNPOOL_FS_ROWS_4(hp)                                            \
  RNNPOOL_FS_DOT(hp)                                               \
  RNNPOOL_FS_ROW(4, r3, hp)                                        \
  RNNPOOL_FS_ROW(5, r4, hp)                                        \
  RNNPOOL_FS_DOT(hp)                                               \
  RNNPOOL_FS_ROW(6, r3, hp)                                        \
  RNNPOOL_FS_ROW(7, r4, hp)
#define RNNPOOL_FS_STEP(hp) RNNPOOL_FS_STEP_(hp, RNNPOOL_FZ_ROWS_OF_##hp)
#define RNNPOOL_FS_STEP_(hp, rows) RNNPOOL_FS_STEP__(hp, rows)
#define RNNPOOL_FS_STEP__(hp, rows)                                \
  "ldrd r1, r2, [r0, #36]\n\t"                                     \
  "ldr lr, [r0, #48]\n\t"                                          \
  "str r1, [r0, #44]\n\t"                                          \
  "str r2, [r0, #52]\n\t"                                          \
  "str lr, [r0, #16]\n\t"                                          \
  "add r1, lr, #(2*" RNNPOOL_STR(hp) ")\n\t"                       \
  "str r1, [r0, #64]\n\t"                                          \
  "ldr r1, [r0, #68]\n\t"                                          \
  "ldm r1, " RNNPOOL_REGS_##hp "\n\t"                              \
  "stm lr, " RNNPOOL_REGS_##hp "\n\t"                              \
  "1:\n\t"                                                         \
  RNNPOOL_FS_ROWS_##rows(hp)                                       \
  "ldrd r1, r2, [r0, #52]\n\t"                                     \
  "ldr r4, [r0, #64]\n\t"                                          \
  "add r1, r1, #(32*" #rows ")\n\t"                                \
  "add r2, r2, #(8*" #rows ")\n\t"                                 \
  "add lr, lr, #(2*" #rows ")\n\t"                                 \
  "strd r1, r2, [r0, #52]\n\t"                                     \
  "str lr, [r0, #16]\n\t"                                          \
  "cmp lr, r4\n\t"                                                 \
  "bne 1b\n\t"                                                     \
  "add lr, lr, #(2*" RNNPOOL_STR(hp) ")\n\t"                       \
  "ldr r1, [r0, #68]\n\t"                                          \
  "ldm lr, " RNNPOOL_REGS_##hp "\n\t"                              \
  "stm r1, " RNNPOOL_REGS_##hp "\n\t"

#define RNNPOOL_FS_DEFINE(name, hp)                                                           \
  static void name(rnnpool_step_ctx* ctx) {                                                   \
    register rnnpool_step_ctx* r0 __asm__("r0") = ctx;                                        \
    __asm__ volatile(RNNPOOL_FS_STEP(hp)                                                      \
                     : "+r"(r0)                                                               \
                     :                                                                        \
                     : "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12",   \
                       "lr", "cc", "memory");                                                 \
  }

/* clang-format on */

RNNPOOL_FS_DEFINE(rnnpool_step_single_16, 16)
RNNPOOL_FS_DEFINE(rnnpool_step_single_8, 8)

/* 1b. RNN1's first step (h = 0: h' = sat16((coef*c + 8192) >> 14), no U.h),
 * for the cells the pair step covers: per unit the (gate, update) pair of
 * the projected pixel from ctx->ia into ctx->sa .. ctx->x_end, two units per
 * iteration. All eight constants stay in registers, so r7 is borrowed (saved
 * and restored here: the asm has no memory operands a frame pointer could
 * address). */
#define RNNPOOL_FIRST_UNIT          \
  "ldrd r11, r12, [r0], #8\n\t"     \
  "ssat r11, #17, r11\n\t"          \
  "asr lr, r11, #8\n\t"             \
  "uxtb r11, r11\n\t"               \
  "ldr lr, [r1, lr, lsl #2]\n\t"    \
  "smlatb r11, lr, r11, r3\n\t"     \
  "sxth lr, lr\n\t"                 \
  "add r11, lr, r11, asr #8\n\t"    \
  "ssat r12, #16, r12\n\t"          \
  "asr lr, r12, #7\n\t"             \
  "and r12, r12, #127\n\t"          \
  "ldr lr, [r2, lr, lsl #2]\n\t"    \
  "smlatb r12, lr, r12, r4\n\t"     \
  "sxth lr, lr\n\t"                 \
  "add r12, lr, r12, asr #7\n\t"    \
  "mls r11, r11, r5, r6\n\t"        \
  "add r11, r7, r11, asr #14\n\t"   \
  "mla r11, r11, r12, r8\n\t"       \
  "ssat r11, #16, r11, asr #14\n\t" \
  "strh r11, [r9], #2\n\t"

static void rnnpool_first_biased_m4(rnnpool_step_ctx* ctx) {
  register rnnpool_step_ctx* r0 __asm__("r0") = ctx;
  __asm__ volatile(
      "push {r7}\n\t"
      "ldr r9, [r0, #68]\n\t"        /* sa: out */
      "ldr r10, [r0, #64]\n\t"       /* x_end: out end */
      "ldr r11, [r0, #56]\n\t"       /* ia: in */
      "ldm r0, {r5, r6, r7, r8}\n\t" /* A, A*16384 + 8192, B, 8192 */
      "ldrd r1, r2, [r0, #20]\n\t"   /* the tables */
      "ldrd r3, r4, [r0, #28]\n\t"   /* 128, 64 */
      "mov r0, r11\n\t"
      "1:\n\t" RNNPOOL_FIRST_UNIT RNNPOOL_FIRST_UNIT
      "cmp r9, r10\n\t"
      "bne 1b\n\t"
      "pop {r7}\n\t"
      : "+r"(r0)
      :
      : "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
}

/* clang-format off */

/* 1c. RNN2's first steps: the same from one projected value per unit, the
 * biases from the unit records (r10 walks them at +16). The end of the
 * output waits on the stack: no register is left for it. */
#define RNNPOOL_FIRST_RAW_UNIT                                     \
  "ldr r11, [r0], #4\n\t"                                          \
  "ldrd r12, lr, [r10], #32\n\t"                                   \
  "add r12, r11, r12\n\t"                                          \
  "add r11, r11, lr\n\t"                                           \
  "ssat r12, #17, r12\n\t"                                         \
  "asr lr, r12, #8\n\t"                                            \
  "uxtb r12, r12\n\t"                                              \
  "ldr lr, [r1, lr, lsl #2]\n\t"                                   \
  "smlatb r12, lr, r12, r3\n\t"                                    \
  "sxth lr, lr\n\t"                                                \
  "add r12, lr, r12, asr #8\n\t"                                   \
  "ssat r11, #16, r11\n\t"                                         \
  "asr lr, r11, #7\n\t"                                            \
  "and r11, r11, #127\n\t"                                         \
  "ldr lr, [r2, lr, lsl #2]\n\t"                                   \
  "smlatb r11, lr, r11, r4\n\t"                                    \
  "sxth lr, lr\n\t"                                                \
  "add r11, lr, r11, asr #7\n\t"                                   \
  "mls r12, r12, r5, r6\n\t"                                       \
  "add r12, r7, r12, asr #14\n\t"                                  \
  "mla r12, r12, r11, r8\n\t"                                      \
  "ssat r12, #16, r12, asr #14\n\t"                                \
  "strh r12, [r9], #2\n\t"

/* clang-format on */

static void rnnpool_first_raw_m4(rnnpool_step_ctx* ctx) {
  register rnnpool_step_ctx* r0 __asm__("r0") = ctx;
  __asm__ volatile(
      "push {r7}\n\t"
      "ldr r9, [r0, #68]\n\t"  /* sa: out */
      "ldr r10, [r0, #64]\n\t" /* x_end: out end, onto the stack */
      "push {r10}\n\t"
      "ldr r10, [r0, #40]\n\t" /* ur */
      "add r10, r10, #16\n\t"  /* its biases */
      "ldr r11, [r0, #56]\n\t" /* ia: in */
      "ldm r0, {r5, r6, r7, r8}\n\t"
      "ldrd r1, r2, [r0, #20]\n\t"
      "ldrd r3, r4, [r0, #28]\n\t"
      "mov r0, r11\n\t"
      "1:\n\t" RNNPOOL_FIRST_RAW_UNIT RNNPOOL_FIRST_RAW_UNIT
      "ldr r11, [sp]\n\t"
      "cmp r9, r11\n\t"
      "bne 1b\n\t"
      "add sp, sp, #4\n\t"
      "pop {r7}\n\t"
      : "+r"(r0)
      :
      : "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
}

/* 2. RNN1's pixel projection for k <= 4 (one or two int16 pairs per row)
 * with the biases added (store_projection in rnnpool_s8.c): per pair of W1
 * rows one load of the weights, SMUAD/SMLAD, the requantization of the
 * matrix's class (S: SMMLA, ASR; L unclamped: LSL, SMMULR), SSAT to 25 bits,
 * the four (gate, update) sums stored by one STM. Registers: the arguments
 * in r0-r3, r10-r12; r7 left alone. */
#define RNNPOOL_PJ_DOT_1      \
  "ldrd r4, r5, [r0], #8\n\t" \
  "smuad r4, r4, r10\n\t"     \
  "smuad r5, r5, r10\n\t"
#define RNNPOOL_PJ_DOT_2          \
  "ldm r0!, {r4, r5, r6, r8}\n\t" \
  "smuad r4, r4, r10\n\t"         \
  "smlad r4, r6, r11, r4\n\t"     \
  "smuad r5, r5, r10\n\t"         \
  "smlad r5, r8, r11, r5\n\t"
/* rq of form S (round_or_lo at +8) or of form L without the clamp, r1 the
 * rnnpool_rq record (advanced). */
#define RNNPOOL_PJ_RQ_SMALL(acc) \
  "ldr r9, [r1, #8]\n\t"         \
  "ldrd r6, r8, [r1], #16\n\t"   \
  "smmla " #acc ", " #acc        \
  ", r6, r9\n\t"                 \
  "asr " #acc ", " #acc          \
  ", r8\n\t"                     \
  "ssat " #acc ", #25, " #acc "\n\t"
#define RNNPOOL_PJ_RQ_UNCLAMPED(acc) \
  "ldrd r6, r8, [r1], #16\n\t"       \
  "rsb r8, r8, #0\n\t"               \
  "lsl " #acc ", " #acc              \
  ", r8\n\t"                         \
  "smmulr " #acc ", " #acc           \
  ", r6\n\t"                         \
  "ssat " #acc ", #25, " #acc "\n\t"
#define RNNPOOL_PJ_LOOP(dot, rq) \
  "1:\n\t"                                                         \
  dot rq(r4) rq(r5)                                                \
  "ldrd r6, r8, [r2, #16]\n\t"                                     \
  "add r6, r4, r6\n\t"                                             \
  "add r8, r4, r8\n\t"                                             \
  "ldrd r9, lr, [r2, #48]\n\t"                                     \
  "add r9, r5, r9\n\t"                                             \
  "add lr, r5, lr\n\t"                                             \
  "stm r3!, {r6, r8, r9, lr}\n\t"                                  \
  "add r2, r2, #64\n\t"                                            \
  "cmp r3, r12\n\t"                                                \
  "bne 1b\n\t"

/* clang-format on */

/* out[2j], out[2j+1] = sat25(rq(W1[j] . x)) + (gate, update) bias of unit j,
 * for the hp (even, >= 2) rows; w: W1 interleaved, q: its hp multipliers,
 * ur: the unit records, x0, x1: the widened pixel's int16 pairs (words = 1
 * or 2; x1 unused with 1). */
static void rnnpool_project_biased_m4(const int16_t* w, const void* q, const void* ur, uint32_t x0, uint32_t x1,
                                      int32_t* out, int32_t hp, int words, int unclamped) {
  register const int16_t* r0 __asm__("r0") = w;
  register const void* r1 __asm__("r1") = q;
  register const void* r2 __asm__("r2") = ur;
  register int32_t* r3 __asm__("r3") = out;
  register uint32_t r10 __asm__("r10") = x0;
  register uint32_t r11 __asm__("r11") = x1;
  register int32_t* r12 __asm__("r12") = out + 2 * hp;
#define RNNPOOL_PJ_ASM(dot, rq)                             \
  __asm__ volatile(RNNPOOL_PJ_LOOP(dot, rq)                 \
                   : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3) \
                   : "r"(r10), "r"(r11), "r"(r12)           \
                   : "r4", "r5", "r6", "r8", "r9", "lr", "cc", "memory")
  if (words == 2) {
    if (unclamped) {
      RNNPOOL_PJ_ASM(RNNPOOL_PJ_DOT_2, RNNPOOL_PJ_RQ_UNCLAMPED);
    } else {
      RNNPOOL_PJ_ASM(RNNPOOL_PJ_DOT_2, RNNPOOL_PJ_RQ_SMALL);
    }
  } else if (unclamped) {
    RNNPOOL_PJ_ASM(RNNPOOL_PJ_DOT_1, RNNPOOL_PJ_RQ_UNCLAMPED);
  } else {
    RNNPOOL_PJ_ASM(RNNPOOL_PJ_DOT_1, RNNPOOL_PJ_RQ_SMALL);
  }
#undef RNNPOOL_PJ_ASM
}

/* clang-format off */

/* 3. A finished RNN1 state's W2 projection (s8_summarize), for h1 = 16 or
 * 8 and W2 of class S or L unclamped: out[j] = sat25(rq(W2[j] . x)), two
 * rows per iteration; per two input pairs one LDRD of the state, two of
 * weights, four SMLADs. Arguments in r0-r3, r12; r7 left alone. */
#define RNNPOOL_SM_PAIRS(off, first)                               \
  "ldrd r6, r8, [r0], #8\n\t"                                      \
  "ldrd r9, r10, [r2, #" #off "]\n\t"                              \
  first                                                            \
  "ldrd r6, r8, [r0], #8\n\t"                                      \
  "smlad r4, r6, r10, r4\n\t"                                      \
  "smlad r5, r8, r10, r5\n\t"
#define RNNPOOL_SM_FIRST                                           \
  "smuad r4, r6, r9\n\t"                                           \
  "smuad r5, r8, r9\n\t"
#define RNNPOOL_SM_NEXT                                            \
  "smlad r4, r6, r9, r4\n\t"                                       \
  "smlad r5, r8, r9, r5\n\t"
#define RNNPOOL_SM_DOT_4 RNNPOOL_SM_PAIRS(0, RNNPOOL_SM_FIRST) RNNPOOL_SM_PAIRS(8, RNNPOOL_SM_NEXT)
#define RNNPOOL_SM_DOT_8 \
  RNNPOOL_SM_DOT_4 RNNPOOL_SM_PAIRS(16, RNNPOOL_SM_NEXT) RNNPOOL_SM_PAIRS(24, RNNPOOL_SM_NEXT)
#define RNNPOOL_SM_LOOP(dot, rq)                                   \
  "1:\n\t"                                                         \
  dot rq(r4) rq(r5)                                                \
  "strd r4, r5, [r3], #8\n\t"                                      \
  "cmp r3, r12\n\t"                                                \
  "bne 1b\n\t"

/* clang-format on */

static void rnnpool_summarize_m4(const int16_t* w, const void* q, const int16_t* x, int32_t* out, int32_t hp, int words,
                                 int unclamped) {
  register const int16_t* r0 __asm__("r0") = w;
  register const void* r1 __asm__("r1") = q;
  register const int16_t* r2 __asm__("r2") = x;
  register int32_t* r3 __asm__("r3") = out;
  register int32_t* r12 __asm__("r12") = out + hp;
#define RNNPOOL_SM_ASM(dot, rq)                   \
  __asm__ volatile(RNNPOOL_SM_LOOP(dot, rq)       \
                   : "+r"(r0), "+r"(r1), "+r"(r3) \
                   : "r"(r2), "r"(r12)            \
                   : "r4", "r5", "r6", "r8", "r9", "r10", "lr", "cc", "memory")
  if (words == 8) {
    if (unclamped) {
      RNNPOOL_SM_ASM(RNNPOOL_SM_DOT_8, RNNPOOL_PJ_RQ_UNCLAMPED);
    } else {
      RNNPOOL_SM_ASM(RNNPOOL_SM_DOT_8, RNNPOOL_PJ_RQ_SMALL);
    }
  } else if (unclamped) {
    RNNPOOL_SM_ASM(RNNPOOL_SM_DOT_4, RNNPOOL_PJ_RQ_UNCLAMPED);
  } else {
    RNNPOOL_SM_ASM(RNNPOOL_SM_DOT_4, RNNPOOL_PJ_RQ_SMALL);
  }
#undef RNNPOOL_SM_ASM
}

#endif /* RNNPOOL_S8_M4_H_ */
