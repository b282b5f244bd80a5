/* safetensors.h (private to the engine): read-only access to safetensors
 * files, mapped into memory, and to the Hugging Face convention of a
 * model directory holding either one model.safetensors or shards listed by
 * model.safetensors.index.json.
 *
 * File layout: 8-byte little-endian header length H, H bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}), then the data section; offsets are relative to
 * its start. Opening validates everything structural (header bounds,
 * JSON, dtypes, shapes, offsets inside the data, no overlap), so a tensor
 * handed out can be read without further checks. Messages name the file
 * and the tensor or field. */
#ifndef HMMBA_SAFETENSORS_H
#define HMMBA_SAFETENSORS_H

#include "core/eng.h"

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum st_dtype {
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U64,
    ST_U32,
    ST_U16,
    ST_U8,
    ST_BOOL,
    ST_F8_E4M3,
    ST_F8_E5M2,
} st_dtype;

typedef struct st_file st_file;

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    size_t nbytes;
    const unsigned char *data; /* inside the mapping, not necessarily aligned */
    const st_file *file;
} st_tensor;

/* The dtype's name as safetensors spells it ("F32", ...). */
const char *st_dtype_name(st_dtype t);

/* The path a tensor was read from (for messages). */
const char *st_tensor_path(const st_tensor *t);

/* Write a shape as "[256, 64]" into buf (always NUL-terminated). */
void st_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);

/* A set of tensors looked up by name: one file or all shards of a model. */
typedef struct st_set st_set;

/* Open the weights of model directory dir: dir/model.safetensors.index.json
 * when it exists (every shard its weight_map names is opened), else
 * dir/model.safetensors. ENG_ENOTFOUND when neither exists, ENG_EIO when
 * a file cannot be read or mapped, ENG_EFORMAT when one is malformed. */
int st_set_open_dir(const char *dir, st_set **out, eng_error *err);

/* Open a single safetensors file as a set. */
int st_set_open_file(const char *path, st_set **out, eng_error *err);

/* The index file's path, or the single file's (for messages about the set). */
const char *st_set_path(const st_set *s);

/* Unmap every file. Accepts NULL. */
void st_set_free(st_set *s);

/* The tensor called name, or NULL. */
const st_tensor *st_set_find(const st_set *s, const char *name);

/* Convert a float tensor (F32, F16, BF16) to F32 into dst (numel floats).
 * Other dtypes give ENG_EFORMAT naming the file, tensor and dtype. */
int st_tensor_to_f32(const st_tensor *t, float *dst, eng_error *err);

#endif
