/* pipe.h - point-to-point float buffers between ranks for the block pipeline (prefix pipe_):
 * blocking receives and non-blocking sends of one micro-batch (one calibration window of
 * T x C floats), so a rank forwards window s+1 while window s is on the wire. Sends are
 * completed with pipe_wait_all before their buffers are reused. Not collectives (par.h). */
#ifndef UPQ_PIPE_H
#define UPQ_PIPE_H

#include <stdint.h>

typedef struct pipe_sends pipe_sends;

/* Room for up to `cap` outstanding sends. */
int pipe_sends_create(int64_t cap, pipe_sends **out);
/* Completes every send and frees the object (NULL is fine). */
int pipe_sends_destroy(pipe_sends *p);

/* Starts sending n floats of buf (must stay untouched until pipe_wait_all) to `dest` with
 * tag `tag`. UPQ_EIO naming the peer on an MPI error or when cap is exhausted. */
int pipe_send_begin(pipe_sends *p, const float *buf, int64_t n, int dest, int tag);
int pipe_wait_all(pipe_sends *p);
/* Receives exactly n floats from `src` with tag `tag`; UPQ_EIO when the count differs. */
int pipe_recv(float *buf, int64_t n, int src, int tag);

/* Numbered non-blocking transfers for the training pipeline (qat's 1F1B): slot k holds at
 * most one outstanding send or receive; a receive is posted early (pipe_post_recv) so it
 * lands while the rank computes, and completed where its data is needed
 * (pipe_wait, which adds its waiting time to *seconds when not NULL: for a receive that
 * is the pipeline bubble plus the transfer). Messages on the world communicator. */
typedef struct pipe_link pipe_link;
int pipe_link_create(int nslots, pipe_link **out);
/* Completes (waits for) everything outstanding and frees; NULL is fine. */
int pipe_link_destroy(pipe_link *l);
int pipe_post_send(pipe_link *l, int slot, const float *buf, int64_t n, int dest, int tag);
int pipe_post_recv(pipe_link *l, int slot, float *buf, int64_t n, int src, int tag);
/* Waits for slot's transfer (nothing posted: returns at once). UPQ_EIO naming the peer
 * and tag on an MPI error or a receive of another size. */
int pipe_wait(pipe_link *l, int slot, double *seconds);
/* Without waiting: *done = 1 when slot's transfer has completed (or nothing is posted),
 * checked as pipe_wait checks it; 0 while it is still under way. */
int pipe_test(pipe_link *l, int slot, int *done);

#endif
