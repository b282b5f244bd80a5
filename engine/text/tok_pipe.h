/* tok_pipe.h: the general tokenizer.json pipeline (normalizers,
 * pre-tokenizers, BPE word setup, decoders) as Hugging Face tokenizers
 * defines them. Not a public header: only engine/text/tok*.c and the
 * tokenizer test include it (through tok_internal.h).
 *
 *   tok_regex.c      Oniguruma regexes, HF's Pattern::find_matches and the
 *                    SplitDelimiterBehavior folds
 *   tok_json_norm.c  normalizers: NFC, NFKC, NFD, NFKD, Prepend, Replace
 *   tok_json_pre.c   pre-tokenizers: ByteLevel, Split, Punctuation, Digits,
 *                    Metaspace
 *   tok_json_model.c BPE word setup: byte fallback, unk, subword affixes
 *   tok_json_dec.c   decoders: ByteLevel, Replace, ByteFallback, Fuse,
 *                    Strip, Metaspace
 *   tok_json_util.c  the JSON readers below (tok_get_bool, ...)
 * tokenizer.c drives them.
 *
 * Sequences are flattened at load into arrays of steps. Ownership: a
 * pipeline's steps (strings, regexes) belong to the eng_tok. */
#ifndef HMMBA_TOK_PIPE_H
#define HMMBA_TOK_PIPE_H

#include "core/buf.h"
#include "core/eng.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many steps after flattening Sequences, per stage. */
#define TOK_MAX_STEPS 16

/* Loading context: the file name for messages, and where they go. */
typedef struct tok_ld {
    const char *path;
    eng_error *err;
} tok_ld;

#define TOK_FMT_ERR(L, ...) eng_error_set((L)->err, ENG_EFORMAT, __VA_ARGS__)

/* An optional boolean field: absent or null gives def. */
int tok_get_bool(tok_ld *L, json_t *obj, const char *key, const char *where, bool def, bool *out);

/* The "type" string of a component object, or NULL. */
const char *tok_type_of(json_t *obj);

/* A single character field (Metaspace replacement, Strip content): a
 * string of exactly one character. */
int tok_get_char(tok_ld *L, json_t *obj, const char *key, const char *where, uint32_t *cp);

/* ---- regexes and splitting (tok_regex.c) ---- */

typedef struct tok_re tok_re; /* a compiled Oniguruma regex; shared, read-only */

/* Compile a "pattern" object ({"String": s} or {"Regex": r}) as HF does
 * (a String is matched literally). Errors name where. */
int tok_re_load(tok_ld *L, json_t *pattern, const char *where, tok_re **out);
void tok_re_free(tok_re *re);

/* One piece of a string cut by a pattern: bytes [s, e), matched or not. */
typedef struct tok_span {
    size_t s, e;
    bool m;
} tok_span;

typedef struct tok_spans {
    tok_span *v;
    size_t n, cap;
} tok_spans;

/* Append the span [s, e) (m: matched). 0 or ENG_ENOMEM. */
int tok_spans_push(tok_spans *sp, size_t s, size_t e, bool m);

/* Per-call matching scratch (an Oniguruma region, span lists). Zero-init;
 * free with tok_match_free. */
typedef struct tok_match {
    void *region;
    tok_spans sp;
} tok_match;
void tok_match_free(tok_match *m);

/* HF's find_matches for a regex (the onig crate's find_iter): the spans
 * cover s[0..n) in order. Replaces m->sp. 0 or an ENG_E* code. */
int tok_find_re(const tok_re *re, tok_match *m, const char *s, size_t n);

/* HF's find_matches for a char predicate: each matching character is one
 * matched span. Replaces m->sp. */
typedef bool (*tok_char_pred)(uint32_t cp, uint32_t arg);
int tok_find_char(tok_char_pred pred, uint32_t arg, tok_match *m, const char *s, size_t n);

enum { TOK_B_REMOVED, TOK_B_ISOLATED, TOK_B_MERGED_PREV, TOK_B_MERGED_NEXT, TOK_B_CONTIGUOUS };

/* Parse a "behavior" string (SplitDelimiterBehavior). */
int tok_behavior_load(tok_ld *L, json_t *v, const char *where, int *out);

/* HF's NormalizedString::split: fold m->sp by behavior; afterwards m->sp
 * lists the pieces to keep (m = true marks pieces to remove). */
int tok_split_fold(tok_match *m, int behavior);

/* ---- normalizers (tok_json_norm.c) ---- */

enum { TOK_N_NFC, TOK_N_NFKC, TOK_N_NFD, TOK_N_NFKD, TOK_N_PREPEND, TOK_N_REPLACE };

typedef struct tok_norm {
    int kind;
    char *str; /* Prepend: prepend; Replace: content */
    size_t len;
    tok_re *re; /* Replace */
} tok_norm;

typedef struct tok_norms {
    tok_norm v[TOK_MAX_STEPS];
    size_t n;
} tok_norms;

/* Read root.normalizer (null, a component or a Sequence). An unsupported
 * type is refused naming it. */
int tok_norm_load(tok_ld *L, json_t *root, tok_norms *out);
void tok_norms_free(tok_norms *ns);

/* Normalize s[0..n) (valid UTF-8) into out (replaced); tmp and nfc are
 * scratch. */
struct tok_nfc;
int tok_norm_apply(const tok_norms *ns, tok_match *m, struct tok_nfc *nfc, const char *s, size_t n,
                   eng_buf *out, eng_buf *tmp);

/* ---- pre-tokenizers (tok_json_pre.c) ---- */

enum { TOK_P_BYTELEVEL, TOK_P_SPLIT, TOK_P_PUNCT, TOK_P_DIGITS, TOK_P_METASPACE };
enum { TOK_PS_ALWAYS, TOK_PS_FIRST, TOK_PS_NEVER };

typedef struct tok_pre {
    int kind;
    int behavior;                     /* Split, Punctuation */
    bool invert;                      /* Split */
    bool add_prefix_space, use_regex; /* ByteLevel */
    bool individual_digits;           /* Digits */
    bool split;                       /* Metaspace */
    int scheme;                       /* Metaspace prepend_scheme */
    uint32_t repl;                    /* Metaspace replacement */
    tok_re *re;                       /* Split; ByteLevel's GPT-2 regex */
    bool onig; /* ByteLevel: cut with re, not tok_gpt2_word_end (tests compare) */
} tok_pre;

typedef struct tok_pres {
    tok_pre v[TOK_MAX_STEPS];
    size_t n;
} tok_pres;

int tok_pre_load(tok_ld *L, json_t *root, tok_pres *out);

/* Metaspace's fields (replacement, prepend_scheme or the older
 * add_prefix_space, and split unless split is NULL): the pre-tokenizer's
 * and the decoder's. */
int tok_metaspace_load(tok_ld *L, json_t *o, const char *where, uint32_t *repl, int *scheme,
                       bool *split);
void tok_pres_free(tok_pres *ps);

/* One piece out of a pre-tokenizer step: bytes [off, off + len) of the
 * step's output (tok_pieces.base); first: it starts at offset 0 of the
 * original text (what Metaspace's prepend_scheme "first" tests). */
typedef struct tok_piece {
    size_t off, len;
    bool first;
} tok_piece;

/* base: the step's input s when it only cuts, its buffer when it rewrote
 * the text (ByteLevel, Metaspace); good until the step's next call. */
typedef struct tok_pieces {
    const char *base;
    tok_piece *v;
    size_t n, cap;
} tok_pieces;

/* Apply step p to s[0..n): the non-empty pieces go to out (replaced); a
 * step that rewrites the text writes it to buf (replaced). */
int tok_pre_apply(const tok_pre *p, tok_match *m, const char *s, size_t n, bool first, eng_buf *buf,
                  tok_pieces *out);

/* ---- decoders (tok_json_dec.c) ---- */

enum {
    TOK_D_BYTELEVEL,
    TOK_D_REPLACE,
    TOK_D_BYTEFALLBACK,
    TOK_D_FUSE,
    TOK_D_STRIP,
    TOK_D_METASPACE
};

typedef struct tok_dec {
    int kind;
    tok_re *re; /* Replace */
    char *str;  /* Replace content */
    size_t len;
    uint32_t ch;        /* Strip content, Metaspace replacement */
    size_t start, stop; /* Strip */
    int scheme;         /* Metaspace */
} tok_dec;

typedef struct tok_decs {
    tok_dec v[TOK_MAX_STEPS];
    size_t n;
    bool present; /* false: no decoder, tokens are joined with " " */
} tok_decs;

int tok_dec_load(tok_ld *L, json_t *root, tok_decs *out);
void tok_decs_free(tok_decs *ds);

/* A list of token strings: [off, off + len) of a buffer. */
typedef struct tok_strs {
    eng_buf b;
    size_t *off, *len;
    size_t n, cap;
} tok_strs;

int tok_strs_push(tok_strs *l, const char *s, size_t n);
void tok_strs_free(tok_strs *l);

/* Run the decoder chain over in (consumed: its contents are replaced) and
 * join the result into out (appended, not NUL-terminated). */
int tok_dec_apply(const tok_decs *ds, tok_strs *in, eng_buf *out);

/* The bytes one token stands for in the middle of a text (positional
 * steps, Strip and Metaspace's first-token rule, are left out): for
 * streaming. Appends to out. */
int tok_dec_piece(const tok_decs *ds, const char *s, size_t n, eng_buf *out);

#endif
