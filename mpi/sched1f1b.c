/* sched1f1b.c - 1F1B order and activation slots (sched1f1b.h). */
#include "sched1f1b.h"


int64_t pipe_1f1b_ops(int stage, int S, int64_t M, pipe_op *ops)
{
    int64_t warm = S - 1 - stage < M ? S - 1 - stage : M, k = 0, f = 0, b = 0;
    for (; f < warm; f++) ops[k++] = (pipe_op){1, f};
    for (; f < M; f++, b++) {
        ops[k++] = (pipe_op){1, f};
        ops[k++] = (pipe_op){0, b};
    }
    for (; b < M; b++) ops[k++] = (pipe_op){0, b};
    return k;
}

int64_t pipe_1f1b_slots(int stage, int S, int64_t M) { return S - stage < M ? S - stage : M; }
