/* tok_pretok.c: Unicode character classes and a hand-written scanner for the
 * GPT-2 pre-tokenizer pattern that HF's ByteLevel pre-tokenizer uses:
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * HF compiles it with Oniguruma: alternatives are tried left to right at
 * each position and the first that matches wins; quantifiers are greedy and
 * backtrack. \s is the Unicode White_Space property, \p{L} / \p{N} the
 * general categories L* / N* (from utf8proc, exact on all of Unicode).
 *
 * What the backtracking amounts to, at a position i:
 *   - "'" followed by s, t, m, d, re, ve or ll: the contraction;
 *   - " " followed by a letter / digit / other: the space plus the run of
 *     that class (a space then whitespace falls through to the \s rules);
 *   - a letter / digit / other: the run of that class;
 *   - whitespace: the maximal run W. If W reaches the end of the text, all
 *     of W. Else (?!\S) fails at the end of W, and backtracking one
 *     character succeeds (that character is whitespace), so W minus its last
 *     character if that leaves at least one; else (W is one character before
 *     a non-space) \s+ takes that one character. The last whitespace
 *     character thus stays to prefix the next token (" ?\p{L}+" only takes a
 *     U+0020 space; any other one ends up alone). */
#include "text/tok_internal.h"

#include <utf8proc.h>

/* ======================================================================
 * character classes
 * ====================================================================== */

/* Classes of ASCII: \t \n \v \f \r and space are White_Space. */
static const unsigned char ascii_class[128] = {
#define O TOK_CL_OTHER
#define W TOK_CL_WS
#define L TOK_CL_L
#define N TOK_CL_N
    O, O, O, O, O, O, O, O, O, W, W, W, W, W, O, O, /* 00 */
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* 10 */
    W, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* 20 */
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O, /* 30 */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* 40 */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* 50 */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* 60 */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* 70 */
#undef O
#undef W
#undef L
#undef N
};

/* White_Space outside ASCII (PropList.txt; stable since Unicode 6.3). */
static bool is_white_space_nonascii(uint32_t c)
{
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int tok_char_class(uint32_t cp)
{
    if (cp < 128) return ascii_class[cp];
    if (is_white_space_nonascii(cp)) return TOK_CL_WS;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return TOK_CL_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return TOK_CL_N;
    default:
        return TOK_CL_OTHER;
    }
}

bool tok_is_word_char(uint32_t cp)
{
    if (cp < 128) return ascii_class[cp] == TOK_CL_L || ascii_class[cp] == TOK_CL_N || cp == '_';
    if (cp == 0x200C || cp == 0x200D) return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

/* ======================================================================
 * scanner (hot loop)
 * ====================================================================== */

/* Class and byte length of the character at s[i] (s is valid UTF-8). */
static inline int class_at(const unsigned char *s, size_t n, size_t i, size_t *len)
{
    if (s[i] < 0x80) {
        *len = 1;
        return ascii_class[s[i]];
    }
    uint32_t cp = 0xFFFD;
    int k = tok_utf8_next(s + i, n - i, &cp);
    *len = k > 0 ? (size_t)k : 1; /* invalid cannot happen; be safe anyway */
    return tok_char_class(cp);
}

/* End of the run of class cl starting at i. */
static inline size_t run_end(const unsigned char *s, size_t n, size_t i, int cl)
{
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII fast path */
            if (ascii_class[s[i]] != cl) break;
            i++;
            continue;
        }
        size_t len;
        if (class_at(s, n, i, &len) != cl) break;
        i += len;
    }
    return i;
}

/* Length of a contraction ('s 't 'm 'd 're 've 'll) at s[i] == '\'', or 0. */
static inline size_t contraction_len(const unsigned char *s, size_t n, size_t i)
{
    if (i + 1 >= n) return 0;
    unsigned char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= n) return 0;
    unsigned char b = s[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

size_t tok_gpt2_word_end(const unsigned char *s, size_t n, size_t i)
{
    if (s[i] == '\'') {
        size_t c = contraction_len(s, n, i);
        if (c) return i + c;
    }
    if (s[i] == ' ' && i + 1 < n) {
        size_t len;
        int cl = class_at(s, n, i + 1, &len);
        if (cl != TOK_CL_WS) return run_end(s, n, i + 1 + len, cl);
    }
    size_t len;
    int cl = class_at(s, n, i, &len);
    if (cl != TOK_CL_WS) return run_end(s, n, i + len, cl);

    /* whitespace: find the maximal run, remembering where its last char starts */
    size_t last = i, j = i + len;
    while (j < n) {
        size_t l2;
        if (class_at(s, n, j, &l2) != TOK_CL_WS) break;
        last = j;
        j += l2;
    }
    if (j == n) return n;      /* \s+(?!\S) at the end of the text */
    if (last > i) return last; /* \s+(?!\S) after backtracking one char */
    return j;                  /* \s+: one whitespace char before a non-space */
}
