/* jobfile.c - INI job-file parser, overrides, typed lookups and the sweep grid
 * (jobfile.h). Own small parser: the format is a few lines of grammar and libinih
 * would still need the override, typing and sweep layers on top. Not the meaning of
 * any key (src/stages/run.c). */
#include "jobfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static int name_ok(const char *s, int dots)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && !(dots && *s == '.')) return 0;
    return 1;
}

int job_put(job_file *j, const char *sect, const char *key, const char *val, int line)
{
    if (strlen(sect) >= JOB_NAME_MAX || strlen(key) >= JOB_NAME_MAX || strlen(val) >= JOB_VALUE_MAX)
        return UPQ_FAIL(UPQ_EINPUT, "%s:%d: name or value too long ([%s] %s)", j->path, line, sect, key);
    for (int i = 0; i < j->n; i++)
        if (!strcmp(j->e[i].sect, sect) && !strcmp(j->e[i].key, key)) {
            snprintf(j->e[i].val, JOB_VALUE_MAX, "%s", val);
            j->e[i].line = line;
            return UPQ_OK;
        }
    if (j->n == j->cap) {
        int cap = j->cap ? 2 * j->cap : 32;
        job_entry *e = realloc(j->e, (size_t)cap * sizeof *e);
        if (!e) return UPQ_FAIL(UPQ_EIO, "%s: out of memory for %d job entries", j->path, cap);
        j->e = e;
        j->cap = cap;
    }
    job_entry *e = &j->e[j->n++];
    snprintf(e->sect, JOB_NAME_MAX, "%s", sect);
    snprintf(e->key, JOB_NAME_MAX, "%s", key);
    snprintf(e->val, JOB_VALUE_MAX, "%s", val);
    e->line = line;
    return UPQ_OK;
}

/* Cuts a comment: '#' or ';' at the start or after whitespace, outside "quotes". */
static void cut_comment(char *s)
{
    int q = 0;
    for (char *p = s; *p; p++) {
        if (*p == '"') q = !q;
        if (!q && (*p == '#' || *p == ';') && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

/* A value in "double quotes" loses them (to keep '#' or leading spaces). */
static char *unquote(char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

static int parse_line(job_file *j, char *raw, int line, char *sect)
{
    cut_comment(raw);
    char *s = trim(raw);
    if (!*s) return UPQ_OK;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (!end || end[1]) return UPQ_FAIL(UPQ_EINPUT, "%s:%d: malformed section header '%s'", j->path, line, s);
        *end = '\0';
        char *name = trim(s + 1);
        if (!name_ok(name, 0) || strlen(name) >= JOB_NAME_MAX)
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: bad section name '%s'", j->path, line, name);
        snprintf(sect, JOB_NAME_MAX, "%s", name);
        return UPQ_OK;
    }
    char *eq = strchr(s, '=');
    if (!eq) return UPQ_FAIL(UPQ_EINPUT, "%s:%d: expected 'key = value', got '%s'", j->path, line, s);
    *eq = '\0';
    char *key = trim(s), *val = unquote(trim(eq + 1));
    if (!sect[0]) return UPQ_FAIL(UPQ_EINPUT, "%s:%d: '%s' before any [section]", j->path, line, key);
    if (!name_ok(key, !strcmp(sect, "sweep")))
        return UPQ_FAIL(UPQ_EINPUT, "%s:%d: bad key '%s' in [%s]", j->path, line, key, sect);
    return job_put(j, sect, key, val, line);
}

int job_parse_text(const char *text, const char *name, job_file *j)
{
    memset(j, 0, sizeof *j);
    snprintf(j->path, sizeof j->path, "%s", name);
    char sect[JOB_NAME_MAX] = "";
    char buf[4096];
    int line = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (len >= sizeof buf) {
            job_free(j);
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: line longer than %zu bytes", name, line, sizeof buf - 1);
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (len && buf[len - 1] == '\r') buf[len - 1] = '\0';
        int rc = parse_line(j, buf, line, sect);
        if (rc) {
            job_free(j);
            return rc;
        }
        p += len + (nl ? 1 : 0);
    }
    return UPQ_OK;
}

int job_load(const char *path, job_file *j)
{
    memset(j, 0, sizeof *j);
    FILE *f = fopen(path, "rb");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "job file %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t n = 0, cap = 0;
    int rc = UPQ_OK;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 16384;
            char *t = cap > (1u << 24) ? NULL : realloc(text, cap);
            if (!t) {
                rc = UPQ_FAIL(UPQ_EINPUT, "job file %s: larger than 16 MiB or out of memory", path);
                break;
            }
            text = t;
        }
        size_t got = fread(text + n, 1, 4096, f);
        n += got;
        if (got < 4096) {
            if (ferror(f)) rc = UPQ_FAIL(UPQ_EIO, "job file %s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!rc && memchr(text, '\0', n)) rc = UPQ_FAIL(UPQ_EINPUT, "job file %s: contains a NUL byte (binary?)", path);
    if (!rc) {
        text[n] = '\0';
        rc = job_parse_text(text, path, j);
    }
    free(text);
    return rc;
}

void job_free(job_file *j)
{
    free(j->e);
    j->e = NULL;
    j->n = j->cap = 0;
}

int job_set(job_file *j, const char *assign)
{
    const char *eq = strchr(assign, '='), *dot = strchr(assign, '.');
    if (!eq || !dot || dot > eq || dot == assign)
        return UPQ_FAIL(UPQ_EUSAGE, "--set wants section.key=value, got '%s'", assign);
    char sect[JOB_NAME_MAX], key[JOB_NAME_MAX], val[JOB_VALUE_MAX];
    if ((size_t)(dot - assign) >= sizeof sect || (size_t)(eq - dot - 1) >= sizeof key || strlen(eq + 1) >= sizeof val)
        return UPQ_FAIL(UPQ_EUSAGE, "--set '%s': name or value too long", assign);
    snprintf(sect, sizeof sect, "%.*s", (int)(dot - assign), assign);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    snprintf(val, sizeof val, "%s", eq + 1);
    char *k = trim(key);
    if (!name_ok(sect, 0) || !name_ok(k, !strcmp(sect, "sweep")))
        return UPQ_FAIL(UPQ_EUSAGE, "--set '%s': bad section or key name", assign);
    return job_put(j, sect, k, trim(val), 0);
}

const char *job_get(const job_file *j, const char *sect, const char *key)
{
    for (int i = 0; i < j->n; i++)
        if (!strcmp(j->e[i].sect, sect) && !strcmp(j->e[i].key, key)) return j->e[i].val;
    return NULL;
}

static int where(const job_file *j, const char *sect, const char *key)
{
    for (int i = 0; i < j->n; i++)
        if (!strcmp(j->e[i].sect, sect) && !strcmp(j->e[i].key, key)) return j->e[i].line;
    return 0;
}

static int bad_value(const job_file *j, const char *sect, const char *key, const char *v, const char *want)
{
    int line = where(j, sect, key);
    if (line)
        return UPQ_FAIL(UPQ_EINPUT, "%s:%d: %s.%s = '%s': expected %s", j->path, line, sect, key, v, want);
    return UPQ_FAIL(UPQ_EINPUT, "%s.%s = '%s' (command line): expected %s", sect, key, v, want);
}

int job_get_i64(const job_file *j, const char *sect, const char *key, int64_t def, int64_t lo, int64_t hi,
                int64_t *out)
{
    const char *v = job_get(j, sect, key);
    if (!v) {
        *out = def;
        return UPQ_OK;
    }
    char *end = NULL, want[96];
    errno = 0;
    long long x = strtoll(v, &end, 10);
    snprintf(want, sizeof want, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    if (errno || end == v || *end || x < lo || x > hi) return bad_value(j, sect, key, v, want);
    *out = x;
    return UPQ_OK;
}

int job_get_f64(const job_file *j, const char *sect, const char *key, double def, double *out)
{
    const char *v = job_get(j, sect, key);
    if (!v) {
        *out = def;
        return UPQ_OK;
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || x != x) return bad_value(j, sect, key, v, "a number");
    *out = x;
    return UPQ_OK;
}

int job_get_bool(const job_file *j, const char *sect, const char *key, int def, int *out)
{
    const char *v = job_get(j, sect, key);
    *out = def;
    if (!v) return UPQ_OK;
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off")) *out = 0;
    else return bad_value(j, sect, key, v, "true or false");
    return UPQ_OK;
}

static int known_key(const char *const *known, const char *sect, const char *key)
{
    char full[2 * JOB_NAME_MAX + 2], all[JOB_NAME_MAX + 3];
    snprintf(full, sizeof full, "%s.%s", sect, key);
    snprintf(all, sizeof all, "%s.*", sect);
    for (int i = 0; known[i]; i++)
        if (!strcmp(known[i], full) || !strcmp(known[i], all)) return 1;
    return 0;
}

int job_check_keys(const job_file *j, const char *const *known)
{
    for (int i = 0; i < j->n; i++) {
        const job_entry *e = &j->e[i];
        if (!strcmp(e->sect, "sweep")) {
            char s[JOB_NAME_MAX];
            const char *dot = strchr(e->key, '.');
            snprintf(s, sizeof s, "%.*s", dot ? (int)(dot - e->key) : 0, e->key);
            if (dot && known_key(known, s, dot + 1) && strcmp(s, "sweep") && strcmp(s, "job")) continue;
        } else if (known_key(known, e->sect, e->key)) {
            continue;
        }
        if (e->line) return UPQ_FAIL(UPQ_EINPUT, "%s:%d: unknown key '%s' in [%s]", j->path, e->line, e->key, e->sect);
        return UPQ_FAIL(UPQ_EINPUT, "--set %s.%s: unknown key", e->sect, e->key);
    }
    return UPQ_OK;
}

static int split_values(const job_file *j, const job_entry *e, job_sweep *s, int p)
{
    char buf[JOB_VALUE_MAX];
    snprintf(buf, sizeof buf, "%s", e->val);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *v = trim(t);
        if (!*v) continue;
        if (n == JOB_SWEEP_MAX_VALUES || strlen(v) >= sizeof s->vals[0][0])
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: sweep %s: more than %d values or a value too long", j->path,
                            e->line, e->key, JOB_SWEEP_MAX_VALUES);
        snprintf(s->vals[p][n++], sizeof s->vals[0][0], "%s", v);
    }
    if (!n) return UPQ_FAIL(UPQ_EINPUT, "%s:%d: sweep %s has no values", j->path, e->line, e->key);
    s->nvals[p] = n;
    return UPQ_OK;
}

int job_sweep_read(const job_file *j, job_sweep *s)
{
    memset(s, 0, sizeof *s);
    s->npoints = 1;
    for (int i = 0; i < j->n; i++) {
        const job_entry *e = &j->e[i];
        if (strcmp(e->sect, "sweep")) continue;
        const char *dot = strchr(e->key, '.');
        if (!dot || dot == e->key || !dot[1])
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: sweep key '%s' must be section.key", j->path, e->line, e->key);
        if (s->nparams == JOB_SWEEP_MAX_PARAMS)
            return UPQ_FAIL(UPQ_EINPUT, "%s:%d: more than %d sweep parameters", j->path, e->line,
                            JOB_SWEEP_MAX_PARAMS);
        int p = s->nparams++;
        snprintf(s->sect[p], JOB_NAME_MAX, "%.*s", (int)(dot - e->key), e->key);
        snprintf(s->key[p], JOB_NAME_MAX, "%s", dot + 1);
        TRY(split_values(j, e, s, p));
        s->npoints *= s->nvals[p];
    }
    return UPQ_OK;
}

/* Mixed radix, first parameter most significant. */
static int digit(const job_sweep *s, int64_t index, int p)
{
    int64_t r = index;
    for (int q = s->nparams - 1; q > p; q--) r /= s->nvals[q];
    return (int)(r % s->nvals[p]);
}

const char *job_sweep_value(const job_sweep *s, int64_t index, int p)
{
    return s->vals[p][digit(s, index, p)];
}

int job_sweep_apply(const job_sweep *s, int64_t index, job_file *j)
{
    if (index < 0 || index >= s->npoints)
        return UPQ_FAIL(UPQ_EUSAGE, "sweep index %lld outside the grid [0, %lld)", (long long)index,
                        (long long)s->npoints);
    for (int p = 0; p < s->nparams; p++) TRY(job_put(j, s->sect[p], s->key[p], job_sweep_value(s, index, p), 0));
    return UPQ_OK;
}

void job_sweep_describe(const job_sweep *s, int64_t index, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int p = 0; p < s->nparams && used < cap; p++) {
        int n = snprintf(buf + used, cap - used, "%s%s.%s=%s", p ? " " : "", s->sect[p], s->key[p],
                         job_sweep_value(s, index, p));
        if (n < 0) break;
        used += (size_t)n;
    }
}

int job_write(const job_file *j, FILE *f)
{
    char done[64][JOB_NAME_MAX];
    int nd = 0;
    for (int i = 0; i < j->n; i++) {
        int seen = 0;
        for (int d = 0; d < nd; d++) seen |= !strcmp(done[d], j->e[i].sect);
        if (seen) continue;
        if (nd == 64) return UPQ_FAIL(UPQ_EINPUT, "%s: more than 64 sections", j->path);
        snprintf(done[nd++], JOB_NAME_MAX, "%s", j->e[i].sect);
        fprintf(f, "%s[%s]\n", i ? "\n" : "", j->e[i].sect);
        for (int k = i; k < j->n; k++)
            if (!strcmp(j->e[k].sect, j->e[i].sect)) {
                const char *v = j->e[k].val;
                int q = strpbrk(v, "#;") || isspace((unsigned char)v[0]) || (v[0] && isspace((unsigned char)v[strlen(v) - 1]));
                fprintf(f, q ? "%s = \"%s\"\n" : "%s = %s\n", j->e[k].key, v);
            }
    }
    return ferror(f) ? UPQ_FAIL(UPQ_EIO, "writing the resolved job: write error") : UPQ_OK;
}
