/* tok_bytelevel.c - the GPT-2 byte <-> unicode alphabet of byte-level BPE (each byte is
 * a printable character: '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves, the other
 * 68 bytes for U+0100.. in byte order) and the mapping of a piece into it (appended to
 * a tok_pieces list, tok_pieces.c). Not the regex split (tok_pretok.c), which calls this
 * file, never the other way. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

static struct {
    int ready;
    char utf8[256][2];
    int len[256];
    int16_t back[324]; /* codepoint -> byte, -1 */
} bl;

static void bl_init(void)
{
    if (bl.ready) return;
    int n = 0;
    for (int cp = 0; cp < 324; cp++) bl.back[cp] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        int cp = printable ? b : 256 + n++;
        bl.back[cp] = (int16_t)b;
        if (cp < 0x80) {
            bl.utf8[b][0] = (char)cp;
            bl.len[b] = 1;
        } else {
            bl.utf8[b][0] = (char)(0xC0 | (cp >> 6));
            bl.utf8[b][1] = (char)(0x80 | (cp & 0x3F));
            bl.len[b] = 2;
        }
    }
    /* Benign if two threads race: both write the same values. */
    bl.ready = 1;
}

const char *tok_byte_to_utf8(uint8_t b, int *n)
{
    bl_init();
    *n = bl.len[b];
    return bl.utf8[b];
}

int tok_unicode_to_byte(uint32_t cp)
{
    bl_init();
    return cp < 324 ? bl.back[cp] : -1;
}

int tok_bytelevel_map(tok_pieces *p, const char *s, int64_t n, int first)
{
    bl_init();
    int64_t start = p->nbuf;
    /* Build the piece directly in p->buf: reserve 2 bytes per input byte. */
    TRY(tok_pieces_add(p, "", 0, first));
    if (p->nbuf + 2 * n > p->capbuf) {
        int64_t nc = p->capbuf ? p->capbuf : 4096;
        while (nc < p->nbuf + 2 * n) nc *= 2;
        char *q = realloc(p->buf, (size_t)nc);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer (%lld bytes)", (long long)nc);
        p->buf = q;
        p->capbuf = nc;
    }
    char *o = p->buf + start;
    for (int64_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        *o++ = bl.utf8[b][0];
        if (bl.len[b] == 2) *o++ = bl.utf8[b][1];
    }
    p->len[p->n - 1] = (o - p->buf) - start;
    p->nbuf = o - p->buf;
    return UPQ_OK;
}
