/* io_anchor.c - keeps the io library non-empty; replaced as io/ grows. */
int upq_io_linked(void) { return 0; }
