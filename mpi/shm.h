/* shm.h - memory shared by the ranks of one node (prefix shm_): MPI-3 shared-memory windows
 * (MPI_Comm_split_type SHARED + MPI_Win_allocate_shared), so that a read-only buffer such
 * as the model's parameters is read and held once per node, not once per rank. The node's
 * first rank (node rank 0) owns the memory and fills it; the others map it. Not the model
 * (src/stages decides what goes in). */
#ifndef UPQ_SHM_H
#define UPQ_SHM_H

#include <stddef.h>
#include <stdint.h>

typedef struct shm_node shm_node;

/* Collective over the world: this rank's node communicator (no memory yet). */
int shm_node_create(shm_node **out);
int shm_node_rank(const shm_node *s); /* 0: the node's reader */
int shm_node_size(const shm_node *s);
/* bytes of buf from node rank 0 to the node's ranks. */
int shm_node_bcast(shm_node *s, void *buf, int64_t bytes);
/* The largest status of the node's ranks (collective over the node). */
int shm_node_max(shm_node *s, int status);
/* Collective over the node: `bytes` bytes owned by node rank 0, mapped by every rank of
 * the node (*ptr). Once per shm_node. *ptr NULL (and UPQ_OK) on every rank of the node
 * when the backing tmpfs (/dev/shm) has not that much room plus 64 MB: then do without. */
int shm_node_alloc(shm_node *s, size_t bytes, void **ptr);
/* Collective over the node: node rank 0's writes are visible to every rank afterwards. */
int shm_node_publish(shm_node *s);
/* Frees the window and the communicator (collective over the node; NULL is fine). */
void shm_node_destroy(shm_node *s);

#endif
