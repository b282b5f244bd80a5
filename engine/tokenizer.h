/* tokenizer.h: byte-level BPE as Hugging Face tokenizers defines it for
 * GPT-2 / GPT-NeoX (tokenizer.json): optional NFC normalization, added
 * tokens matched before BPE, GPT-2 pre-tokenization exact on all of
 * Unicode, byte<->unicode mapping and ranked merges. Plus a streaming UTF-8
 * decoder so streamed text is always valid UTF-8.
 *
 * A tokenizer is immutable after loading and may be shared by threads. */
#ifndef HMMBA_TOKENIZER_H
#define HMMBA_TOKENIZER_H

#include "eng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eng_tok eng_tok;

/* Load tokenizer.json at path. Malformed files give ENG_EFORMAT naming the
 * field; unreadable ones ENG_EIO. Free with eng_tok_free. */
int eng_tok_load(const char *path, eng_tok **out, eng_error *err);
void eng_tok_free(eng_tok *t); /* accepts NULL */

/* Number of ids (model vocab + added tokens): valid ids are 0..size-1. */
size_t eng_tok_vocab_size(const eng_tok *t);

/* Encode len bytes of text (need not be NUL-terminated). Invalid UTF-8 is
 * not an error: each bad byte is treated as U+FFFD, as HF does. *ids is
 * malloc'd, the caller frees it. */
int eng_tok_encode(const eng_tok *t, const char *text, size_t len, int32_t **ids, size_t *n,
                   eng_error *err);

/* Decode ids to text as HF's decode(ids) does by default (special tokens
 * are skipped). *text is malloc'd and NUL-terminated; *len excludes the NUL.
 * Ids out of range give ENG_EINVAL naming the position. */
int eng_tok_decode(const eng_tok *t, const int32_t *ids, size_t n, char **text, size_t *len,
                   eng_error *err);

/* The raw bytes of one token (after the byte-level mapping is undone), for
 * streaming. Returns NULL for an id out of range. Special tokens give their
 * content unless skip_special, then "" . */
const char *eng_tok_piece(const eng_tok *t, int32_t id, bool skip_special, size_t *len);

/* Id of an exact token string (e.g. "<|endoftext|>"), or -1. */
int32_t eng_tok_lookup(const eng_tok *t, const char *token);

/* Streaming UTF-8: push the bytes of each token; complete characters come
 * out, an incomplete trailing sequence is held back until the next push
 * completes it. Invalid bytes come out as U+FFFD. */
typedef struct eng_utf8_stream {
    unsigned char pending[4];
    size_t n;
} eng_utf8_stream;

/* out must hold at least len + 8 bytes. Returns the bytes written. */
size_t eng_utf8_stream_push(eng_utf8_stream *s, const char *bytes, size_t len, char *out);
/* Flush what is held at the end of a stream (as U+FFFD). out: >= 8 bytes. */
size_t eng_utf8_stream_flush(eng_utf8_stream *s, char *out);

#endif
