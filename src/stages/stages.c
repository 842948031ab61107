/* stages.c - anchor of the stage-driver library; the drivers live beside it. */
#include "upq_err.h"
int upq_stages_linked(void) { return UPQ_OK; }
