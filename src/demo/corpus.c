/* corpus.c - the demo corpus: short stories from a small probabilistic grammar, and
 * corpus_rng, a wrapper of the shared PRNG (rng.h). The grammar mixes easy structure
 * (agreement of a/an, one apple / two apples, he/his vs she/her, was/were) with
 * long-range facts a small model must carry (the hero's, friend's and pet's names,
 * sums and differences of numbers, the length of a list, the period of a pattern), so
 * next-token loss has both an easy and a hard part and quantization error shows. Not a
 * tokenizer; no I/O. */
#include "corpus.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"
#include "upq_err.h"

/* ---- PRNG (rng.h) --------------------------------------------------------------- */

void corpus_rng_seed(corpus_rng *r, uint64_t seed) { upq_rng_seed(r->s, seed); }

uint64_t corpus_rng_next(corpus_rng *r) { return upq_rng_next(r->s); }

uint64_t corpus_rng_below(corpus_rng *r, uint64_t n)
{
    UPQ_ASSERT(n > 0);
    uint64_t lim = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    uint64_t x;
    do x = corpus_rng_next(r);
    while (x >= lim);
    return x % n;
}

double corpus_rng_uniform(corpus_rng *r) { return upq_rng_uniform(r->s); }

double corpus_rng_normal(corpus_rng *r)
{
    double u1 = corpus_rng_uniform(r), u2 = corpus_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- word lists -------------------------------------------------------------------- */

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const girls[] = {"Lily", "Anna", "Mia", "Sara", "Emma", "Zoe", "Lucy",
                                    "Nora", "Ruth", "Ella", "Maya", "Ivy", "Rosa", "Jane"};
static const char *const boys[] = {"Tom", "Ben", "Max", "Sam", "Leo", "Jack", "Finn",
                                   "Noah", "Owen", "Paul", "Hugo", "Eli", "Dan", "Carl"};
static const char *const adjs[] = {"little", "kind", "brave", "happy", "curious", "quiet",
                                   "clever", "shy", "funny", "old", "young", "busy"};
static const char *const homes[] = {"house", "cottage", "farm", "cabin", "tower", "tent"};
static const char *const places[] = {"river", "forest", "park", "hill", "sea", "lake",
                                     "school", "garden", "bridge", "village"};
/* pet, its sound, its favourite food */
static const char *const pets[][3] = {{"dog", "barked", "bones"}, {"cat", "purred", "fish"},
                                      {"bird", "sang", "seeds"},  {"frog", "croaked", "flies"},
                                      {"horse", "neighed", "hay"}, {"duck", "quacked", "bread"}};
static const char *const pet_names[] = {"Spot", "Rex", "Bella", "Coco", "Milo", "Pip",
                                        "Toby", "Luna", "Daisy", "Rusty", "Ginger", "Bolt"};
/* countable items: singular, plural */
static const char *const items[][2] = {{"apple", "apples"}, {"cookie", "cookies"}, {"ball", "balls"},
                                       {"stone", "stones"}, {"shell", "shells"}, {"flower", "flowers"},
                                       {"egg", "eggs"},     {"book", "books"},   {"box", "boxes"},
                                       {"cherry", "cherries"}, {"leaf", "leaves"}, {"star", "stars"}};
static const char *const colors[] = {"red", "blue", "green", "yellow", "orange",
                                     "pink", "white", "black", "purple", "brown"};
static const char *const things[] = {"hat", "kite", "cup", "bag", "umbrella", "scarf", "drum", "boat"};
static const char *const nums[] = {"zero", "one", "two", "three", "four", "five", "six",
                                   "seven", "eight", "nine", "ten", "eleven", "twelve",
                                   "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                                   "eighteen", "nineteen", "twenty"};
static const char *const greetings[] = {"Hello", "Hi", "Good morning", "Look"};
static const char *const games[] = {"play", "run", "swim", "read", "sing", "draw", "dance"};
static const char *const starts[] = {"One day,", "The next morning,", "After lunch,", "Later,",
                                     "In the evening,", "Then"};

/* ---- story state and output ------------------------------------------------------- */

enum { STORY_CAP = 8192 };

typedef struct {
    const char *name;
    int female;
} person;

typedef struct {
    corpus_rng *r;
    char buf[STORY_CAP];
    int len;
    person hero, friend;
    int pet;              /* index into pets */
    const char *pet_name;
    int place;            /* where the pet is kept, recalled in dialogue */
} story;

static void emit(story *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(story *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->len, (size_t)(STORY_CAP - s->len), fmt, ap);
    va_end(ap);
    UPQ_ASSERT(n >= 0 && s->len + n < STORY_CAP); /* stories are far shorter than the cap */
    s->len += n;
}

static int pick(story *s, int n) { return (int)corpus_rng_below(s->r, (uint64_t)n); }
static int range(story *s, int lo, int hi) { return lo + pick(s, hi - lo + 1); }
static const char *he(const person *p) { return p->female ? "she" : "he"; }
static const char *He(const person *p) { return p->female ? "She" : "He"; }
static const char *his(const person *p) { return p->female ? "her" : "his"; }
static const char *him(const person *p) { return p->female ? "her" : "him"; }
static const char *an(const char *w) { return strchr("aeiou", w[0]) ? "an" : "a"; }

static person random_person(story *s, const char *avoid)
{
    person p;
    do {
        p.female = pick(s, 2);
        p.name = p.female ? girls[pick(s, NELEM(girls))] : boys[pick(s, NELEM(boys))];
    } while (avoid && !strcmp(p.name, avoid));
    return p;
}

/* "one apple", "no apples", "seven apples" */
static void emit_count(story *s, int n, int item)
{
    if (n == 0) emit(s, "no %s", items[item][1]);
    else emit(s, "%s %s", nums[n], items[item][n == 1 ? 0 : 1]);
}

/* ---- sentences -------------------------------------------------------------------- */

static void s_intro(story *s)
{
    const char *adj = adjs[pick(s, NELEM(adjs))];
    const char *kind = s->hero.female ? "girl" : "boy";
    emit(s, "Once upon a time, there was %s %s %s named %s. ", an(adj), adj, kind, s->hero.name);
    const char *size = pick(s, 2) ? "big" : "old";
    emit(s, "%s lived in %s %s %s near the %s with %s %s %s. ", He(&s->hero), an(size), size,
         homes[pick(s, NELEM(homes))], places[s->place], his(&s->hero), pets[s->pet][0],
         s->pet_name);
    if (pick(s, 2)) emit(s, "%s was %d years old. ", s->hero.name, range(s, 4, 12));
    emit(s, "%s had a friend named %s. ", s->hero.name, s->friend.name);
}

static void s_add(story *s)
{
    int it = pick(s, NELEM(items)), a = range(s, 1, 10), b = range(s, 1, 10);
    emit(s, "%s had ", s->hero.name);
    emit_count(s, a, it);
    emit(s, ". %s gave %s %s more. Now %s had ", s->friend.name, him(&s->hero), nums[b], s->hero.name);
    emit_count(s, a + b, it);
    emit(s, ". ");
}

static void s_sub(story *s)
{
    int it = pick(s, NELEM(items)), a = range(s, 2, 12), b = range(s, 1, a);
    emit(s, "%s found ", s->friend.name);
    emit_count(s, a, it);
    emit(s, " at the %s. %s gave %s to %s. Now %s had ", places[pick(s, NELEM(places))],
         He(&s->friend), nums[b], s->hero.name, he(&s->friend));
    emit_count(s, a - b, it);
    emit(s, " left. ");
}

static void s_fact(story *s)
{
    int kind = pick(s, 3);
    if (kind == 0) {
        int a = range(s, 0, 10), b = range(s, 0, 10);
        emit(s, "%s knew that %s plus %s is %s. ", s->hero.name, nums[a], nums[b], nums[a + b]);
    } else if (kind == 1) {
        int a = range(s, 1, 20), b = range(s, 0, a);
        emit(s, "\"%s minus %s is %s,\" said %s. ", nums[a], nums[b], nums[a - b], s->friend.name);
    } else {
        int a = range(s, 10, 99), b = range(s, 1, 99);
        emit(s, "%s wrote %d + %d = %d on the board. ", s->hero.name, a, b, a + b);
    }
}

static void s_dialog(story *s)
{
    person *a = pick(s, 2) ? &s->hero : &s->friend, *b = a == &s->hero ? &s->friend : &s->hero;
    /* one draw per statement: argument evaluation order is unspecified in C */
    const char *hello = greetings[pick(s, NELEM(greetings))];
    const char *game = games[pick(s, NELEM(games))];
    emit(s, "\"%s, %s!\" said %s. \"Do you want to %s with me?\" ", hello, b->name, a->name, game);
    if (pick(s, 3)) emit(s, "\"Yes!\" said %s. ", b->name);
    else emit(s, "\"No, I am tired,\" said %s. ", b->name);
    if (pick(s, 2)) {
        emit(s, "\"Where is %s?\" asked %s. ", s->pet_name, s->friend.name);
        emit(s, "\"%s is at the %s,\" said %s. ", s->pet_name, places[s->place], s->hero.name);
    }
}

static void s_list(story *s)
{
    int n = range(s, 2, 5), used[NELEM(things)] = {0};
    emit(s, "At the market, %s bought ", s->hero.name);
    for (int i = 0; i < n; i++) {
        int t;
        do t = pick(s, NELEM(things));
        while (used[t]);
        used[t] = 1;
        const char *c = colors[pick(s, NELEM(colors))];
        emit(s, "%s%s %s %s", i == 0 ? "" : (i == n - 1 ? " and " : ", "), an(c), c, things[t]);
    }
    emit(s, ". %s put %s %s things in a bag. There were %s things in the bag. ", He(&s->hero),
         n == 2 ? "both" : "all", his(&s->hero), nums[n]);
}

static void s_count(story *s)
{
    int it = pick(s, NELEM(items)), n = range(s, 3, 12);
    emit(s, "%s counted the %s: ", s->friend.name, items[it][1]);
    for (int i = 1; i <= n; i++) emit(s, "%s%s", nums[i], i < n ? ", " : ". ");
    emit(s, "There were %s %s. ", nums[n], items[it][1]);
}

static void s_pattern(story *s)
{
    if (pick(s, 2)) {
        int p = range(s, 2, 3), reps = range(s, 2, 4), c[3];
        for (int i = 0; i < p; i++) c[i] = (i == 0 ? pick(s, NELEM(colors)) : (c[i - 1] + 1 + pick(s, 4)) % NELEM(colors));
        emit(s, "%s made a pattern with beads: ", s->hero.name);
        for (int k = 0; k < p * reps; k++) emit(s, "%s%s", colors[c[k % p]], k < p * reps - 1 ? ", " : ". ");
    } else {
        int step = range(s, 1, 3), n = range(s, 4, 6), a = range(s, 0, 20 - step * (n - 1));
        emit(s, "%s said the numbers: ", s->friend.name);
        for (int k = 0; k < n; k++) emit(s, "%s%s", nums[a + k * step], k < n - 1 ? ", " : ". ");
    }
}

static void s_pet(story *s)
{
    const char *const *p = pets[s->pet];
    emit(s, "%s the %s %s. ", s->pet_name, p[0], p[1]);
    if (pick(s, 2)) emit(s, "%s gave %s some %s. ", s->hero.name, s->pet_name, p[2]);
    else emit(s, "%s loved %s very much. ", s->hero.name, s->pet_name);
}

static void s_go(story *s)
{
    const char *when = starts[pick(s, NELEM(starts))];
    const char *where = places[pick(s, NELEM(places))];
    emit(s, "%s %s and %s went to the %s. ", when, s->hero.name, s->friend.name, where);
    if (pick(s, 2)) emit(s, "They were %s. ", pick(s, 2) ? "happy" : "excited");
}

static void s_end(story *s)
{
    emit(s, "At the end of the day, %s and %s were %s. ", s->hero.name, s->friend.name,
         pick(s, 2) ? "tired" : "happy");
    emit(s, "%s said goodbye to %s and went home with %s. The end.\n\n", s->hero.name,
         s->friend.name, s->pet_name);
}

static void story_make(story *s)
{
    static void (*const events[])(story *) = {s_add, s_sub, s_fact, s_dialog, s_list,
                                               s_count, s_pattern, s_pet, s_go};
    s->len = 0;
    s->buf[0] = '\0';
    s->hero = random_person(s, NULL);
    s->friend = random_person(s, s->hero.name);
    s->pet = pick(s, NELEM(pets));
    s->pet_name = pet_names[pick(s, NELEM(pet_names))];
    s->place = pick(s, NELEM(places));
    s_intro(s);
    int n = range(s, 4, 9);
    for (int i = 0; i < n; i++) events[pick(s, NELEM(events))](s);
    s_end(s);
}

void corpus_generate(uint64_t seed, char *buf, int64_t n)
{
    corpus_rng r;
    corpus_rng_seed(&r, seed);
    story s; /* 8 KB of scratch */
    s.r = &r;
    int64_t off = 0;
    while (off < n) {
        story_make(&s);
        int64_t k = s.len < n - off ? s.len : n - off;
        memcpy(buf + off, s.buf, (size_t)k);
        off += k;
    }
}
