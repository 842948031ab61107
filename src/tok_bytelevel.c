/* tok_bytelevel.c - the GPT-2 byte <-> unicode alphabet of byte-level BPE (each byte is
 * a printable character: '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves, the other
 * 68 bytes for U+0100.. in byte order), and strict UTF-8 stepping (the Rust definition:
 * no overlongs, no surrogates, nothing above U+10FFFF). Not the regex split (tok_pretok.c). */
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

int tok_utf8_next(const char *s, int64_t n, uint32_t *cp)
{
    const uint8_t *u = (const uint8_t *)s;
    uint8_t c = u[0];
    *cp = c;
    if (c < 0x80) return 1;
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 1;
    }
    if (n < len) return 1;
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 1;
        v = (v << 6) | (u[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 1;
    *cp = v;
    return len;
}
