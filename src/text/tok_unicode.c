/* tok_unicode.c - the Unicode the tokenizer needs: strict UTF-8 stepping (the Rust
 * definition: no overlongs, no surrogates, nothing above U+10FFFF), NFC through
 * libutf8proc, and the Unicode word-character test of HF's single_word added tokens.
 * The lowest layer of the tokenizer: it calls no other tok_ file. Regex properties
 * (\p{L}, \p{N}, \s) are PCRE2's (tok_pretok.c). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok_internal.h"
#include "upq_err.h"

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

/* Length of the valid UTF-8 run at s[0..n): up to the first byte that does not start a
 * valid sequence. */
static int64_t valid_run(const char *s, int64_t n)
{
    int64_t i = 0;
    while (i < n) {
        uint32_t cp;
        int L = tok_utf8_next(s + i, n - i, &cp);
        if (L == 1 && cp >= 0x80) break;
        i += L;
    }
    return i;
}

static int nfc_put(char **o, int64_t *on, int64_t *cap, const char *s, int64_t n)
{
    if (*on + n + 1 > *cap) {
        int64_t c = *cap ? *cap : 256;
        while (c < *on + n + 1) c *= 2;
        char *q = realloc(*o, (size_t)c);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer's NFC normalizer (%lld bytes)", (long long)c);
        *o = q;
        *cap = c;
    }
    memcpy(*o + *on, s, (size_t)n);
    *on += n;
    (*o)[*on] = 0;
    return UPQ_OK;
}

/* utf8proc's NFC of one run of valid UTF-8 appended to *o. */
static int nfc_run(const char *s, int64_t n, char **o, int64_t *on, int64_t *cap)
{
    utf8proc_uint8_t *d = NULL;
    utf8proc_ssize_t dn = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &d,
                                       UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (dn < 0) return UPQ_FAIL(UPQ_EIO, "NFC normalizer (utf8proc): %s", utf8proc_errmsg(dn));
    int rc = nfc_put(o, on, cap, (const char *)d, (int64_t)dn);
    free(d);
    return rc;
}

int tok_nfc(const char *s, int64_t n, char **o, int64_t *on)
{
    *o = NULL;
    *on = 0;
    int64_t cap = 0, i = 0;
    int ascii = 1;
    for (int64_t k = 0; k < n && ascii; k++) ascii = (uint8_t)s[k] < 0x80;
    if (ascii) return nfc_put(o, on, &cap, s, n); /* ASCII text is NFC */
    int rc = nfc_put(o, on, &cap, "", 0);
    while (!rc && i < n) {
        int64_t r = valid_run(s + i, n - i);
        if (r) rc = nfc_run(s + i, r, o, on, &cap);
        else rc = nfc_put(o, on, &cap, s + i, 1); /* an invalid byte passes through alone */
        i += r ? r : 1;
    }
    if (rc) {
        free(*o);
        *o = NULL;
        *on = 0;
    }
    return rc;
}

int tok_is_word_char(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
    if (cp > 0x10FFFF) return 0;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC: return 1;
    default: break;
    }
    /* Join_Control and the Other_Alphabetic symbols (circled and squared Latin letters) */
    return cp == 0x200C || cp == 0x200D || (cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
           (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189);
}
