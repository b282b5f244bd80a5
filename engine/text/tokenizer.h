/* tokenizer.h: BPE tokenizers as Hugging Face tokenizers defines them in
 * tokenizer.json: added tokens matched before anything else, then the
 * file's normalizers, pre-tokenizers, BPE model and decoders (see
 * eng_tok_load for the supported components), exact on all of Unicode.
 * GPT-2 / GPT-NeoX pipelines run a faster hand-written path with the same
 * results. Plus a streaming UTF-8 decoder so streamed text is always valid
 * UTF-8.
 *
 * A tokenizer is immutable after loading and may be shared by threads.
 *
 * Ownership: arguments are borrowed for the call; what a function returns
 * through a pointer (ids, text, a tokenizer) the caller owns and frees
 * (free(), or eng_tok_free); a piece (eng_tok_piece) is borrowed from the
 * tokenizer. */
#ifndef HMMBA_TOKENIZER_H
#define HMMBA_TOKENIZER_H

#include "core/eng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eng_tok eng_tok;

/* Load tokenizer.json at path. Malformed files give ENG_EFORMAT naming the
 * field; unreadable ones ENG_EIO. Free with eng_tok_free. Supported:
 *   normalizer: null, NFC, NFKC, NFD, NFKD, Prepend, Replace, Sequence;
 *   pre_tokenizer: null, ByteLevel (add_prefix_space, use_regex), Split
 *     (String or Regex pattern, any behavior, invert), Punctuation,
 *     Digits (individual_digits), Metaspace (replacement, prepend_scheme,
 *     split), Sequence;
 *   model: BPE (merges as "a b" or [a, b]; unk_token, fuse_unk,
 *     byte_fallback, ignore_merges, continuing_subword_prefix,
 *     end_of_word_suffix) without dropout;
 *   decoder: null, ByteLevel, Replace, ByteFallback, Fuse, Strip,
 *     Metaspace, Sequence;
 *   post_processor: null, ByteLevel, TemplateProcessing,
 *     RobertaProcessing, BertProcessing, Sequence, all ignored (they only
 *     add special tokens on request, which eng_tok_encode never makes);
 *   added_tokens with their
 *     single_word, lstrip, rstrip, normalized and special flags.
 * Any other component gives ENG_EFORMAT naming it (e.g. `pre_tokenizer
 * type "WhitespaceSplit" is not supported`), never different ids.
 * "truncation" and "padding" are ignored. */
int eng_tok_load(const char *path, eng_tok **out, eng_error *err);
void eng_tok_free(eng_tok *t); /* accepts NULL */

/* Which encode path the loaded pipeline runs: "fast" (the hand-written
 * GPT-2 / GPT-NeoX path: normalizer null or NFC, one ByteLevel
 * pre-tokenizer, plain byte-level BPE) or "general" (every other
 * supported pipeline). A static string; "" for NULL. */
const char *eng_tok_pipeline(const eng_tok *t);

/* Number of ids (model vocab + added tokens): valid ids are 0..size-1. */
size_t eng_tok_vocab_size(const eng_tok *t);

/* Encode len bytes of text (need not be NUL-terminated). Invalid UTF-8 is
 * not an error (HF cannot even be given it): each maximal invalid
 * subsequence (Unicode's "maximal subpart" practice, as Python's
 * errors="replace") is read as one U+FFFD. *ids is malloc'd (never NULL on
 * success, even when *n is 0); the caller frees it. Thread-safe: all
 * per-call state, including the word cache, is local to the call. */
int eng_tok_encode(const eng_tok *t, const char *text, size_t len, int32_t **ids, size_t *n,
                   eng_error *err);

/* Decode ids to text as HF's decode(ids, skip_special_tokens=False) does
 * (transformers' default; the fixtures' "decoded" keep special tokens, e.g.
 * "<|endoftext|>"), through the file's decoder (tokens joined with " "
 * when it has none), without clean_up_tokenization_spaces. Bytes that are
 * not valid UTF-8 come out as U+FFFD (as Rust's from_utf8_lossy). *text is
 * malloc'd and NUL-terminated; *len excludes the NUL. Ids out of range give
 * ENG_EINVAL naming the position. */
int eng_tok_decode(const eng_tok *t, const int32_t *ids, size_t n, char **text, size_t *len,
                   eng_error *err);

/* The raw bytes of one token, for streaming: the token through the
 * decoder's per-token steps (the byte-level mapping undone, "<0xNN>" as
 * its byte, the metaspace as " "), as in the middle of a text; the
 * positional steps (Strip, Metaspace's first-token rule) are left out.
 * Returns NULL for an id out of range. Special tokens give their content
 * unless skip_special, then "" . */
const char *eng_tok_piece(const eng_tok *t, int32_t id, bool skip_special, size_t *len);

/* Id of an exact token string, or -1: added tokens by content first, then
 * the model vocab in the model's own alphabet (a leading space is "Ġ" in
 * byte-level vocabularies, "▁" in SentencePiece-style ones; byte fallback
 * tokens are "<0x0A>"), as HF's token_to_id.
 * eng_tok_lookup(t, "<|endoftext|>") is 0 for GPT-NeoX. */
int32_t eng_tok_lookup(const eng_tok *t, const char *token);

/* Streaming UTF-8: push the bytes of each token; complete characters come
 * out, an incomplete trailing sequence is held back until the next push
 * completes it. Invalid bytes come out as U+FFFD. */
typedef struct eng_utf8_stream {
    unsigned char pending[4];
    size_t n;
} eng_utf8_stream;

/* Bytes out must hold for a push of len bytes: each invalid byte may grow
 * to a 3-byte U+FFFD, plus one for what was pending. */
#define ENG_UTF8_STREAM_OUT_MAX(len) (3 * (size_t)(len) + 8)

/* Zero-initialise the struct to start a stream. out must hold at least
 * ENG_UTF8_STREAM_OUT_MAX(len) bytes (len + 8 is enough while the stream
 * is valid UTF-8). Returns the bytes written; not NUL-terminated. Concatenating the
 * outputs of all pushes and the flush gives what eng_tok_decode gives for
 * the whole byte string. */
size_t eng_utf8_stream_push(eng_utf8_stream *s, const char *bytes, size_t len, char *out);
/* Flush what is held at the end of a stream (as U+FFFD). out: >= 8 bytes. */
size_t eng_utf8_stream_flush(eng_utf8_stream *s, char *out);

#endif
