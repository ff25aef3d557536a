/* The streaming driver shared by the int8 and float32 kernels.
 *
 * Walks the (padded) map once, row by row, pixel by pixel, and keeps only
 * what later pixels need (docs/kernel.md, "Work organisation"):
 *   - each pixel is W1-projected once, then steps every RNN1 segment that
 *     contains it: the row segments of the patch columns covering it
 *     (at most Ac = ceil(c/sc), states in `row_states`) and the column
 *     segments of the patch rows covering its row (at most Ar = ceil(r/sr),
 *     states in `col_states[Ar][Wu]`); segments starting at the pixel share
 *     one first step;
 *   - a finished row summary is W2-projected once into a ring of r image
 *     rows (`ring[r][Wo]`); a finished column summary into a ring of c
 *     columns (`col_ring[c]`);
 *   - a patch is pooled (RNN2) as soon as its last pixel is done; after the
 *     last patch of a patch row its output_pad_right copies are written, after
 *     the last patch of the image the output_pad_bottom copies of the last row.
 * Every segment and summary is computed exactly once, whatever the overlap of
 * the patches. */
#include <string.h>

#include "rnnpool_internal.h"

typedef struct {
  size_t work, row_states, col_states, ring, col_ring, total;
  int ok;
} stream_regions;

static stream_regions regions(const rnnpool_layout* l, const rnnpool_stream_ops* ops) {
  stream_regions s;
  size_t cursor = 0;
  s.ok = 1;
  s.work = rnnpool_take(&cursor, ops->work_bytes, &s.ok);
  s.row_states = rnnpool_take(&cursor, rnnpool_mul((size_t)l->row_slots, ops->state_bytes, &s.ok), &s.ok);
  s.col_states = rnnpool_take(
      &cursor, rnnpool_mul(rnnpool_mul((size_t)l->col_slots, (size_t)l->used_cols, &s.ok), ops->state_bytes, &s.ok),
      &s.ok);
  s.ring = rnnpool_take(
      &cursor,
      rnnpool_mul(rnnpool_mul((size_t)l->cfg.patch_rows, (size_t)l->geo.out_cols, &s.ok), ops->proj_bytes, &s.ok),
      &s.ok);
  s.col_ring = rnnpool_take(&cursor, rnnpool_mul((size_t)l->cfg.patch_cols, ops->proj_bytes, &s.ok), &s.ok);
  s.total = cursor;
  return s;
}

size_t rnnpool_stream_scratch_bytes(const rnnpool_layout* layout, const rnnpool_stream_ops* ops) {
  const stream_regions s = regions(layout, ops);
  return s.ok ? s.total : 0;
}

/* First patch index whose window [i*s, i*s + p) contains v. */
static int32_t first_window(int32_t v, int32_t p, int32_t s) {
  const int32_t lo = v - p + 1;
  return lo <= 0 ? 0 : (lo + s - 1) / s;
}

/* Patch index whose window ends at v (v = i*s + p - 1), or -1. */
static int32_t window_ending_at(int32_t v, int32_t p, int32_t s) {
  const int32_t d = v - (p - 1);
  return d >= 0 && d % s == 0 ? d / s : -1;
}

/* Collects the segments stepped at one pixel: the first fresh one gets the
 * first step computed, the others copy it; continuing ones go in pairs. */
typedef struct {
  const rnnpool_stream_ops* ops;
  const void* prepared;
  void* work;
  void* fresh_done;
  void* pending;
} step_batch;

static void batch_add(step_batch* b, uint8_t* state, int fresh) {
  if (fresh) {
    if (b->fresh_done == NULL) {
      b->ops->fresh(b->prepared, state, b->work);
      b->fresh_done = state;
    } else {
      memcpy(state, b->fresh_done, b->ops->state_bytes);
    }
  } else if (b->pending == NULL) {
    b->pending = state;
  } else {
    b->ops->step(b->prepared, b->pending, state, b->work);
    b->pending = NULL;
  }
}

/* Replicate padding of one finished output row (pad_right copies of its last
 * pixel) and, after the last row, of the whole image (pad_bottom copies of the
 * last padded row). */
static void pad_right(uint8_t* row, int32_t wo, int32_t copies, size_t pixel_bytes) {
  const uint8_t* last = row + (size_t)(wo - 1) * pixel_bytes;
  int32_t t;
  for (t = 1; t <= copies; ++t) memcpy(row + (size_t)(wo - 1 + t) * pixel_bytes, last, pixel_bytes);
}

static void pad_bottom(uint8_t* image, int32_t ho, int32_t copies, size_t row_bytes) {
  const uint8_t* last = image + (size_t)(ho - 1) * row_bytes;
  int32_t t;
  for (t = 1; t <= copies; ++t) memcpy(image + (size_t)(ho - 1 + t) * row_bytes, last, row_bytes);
}

rnnpool_status rnnpool_stream_run(const rnnpool_layout* l, const rnnpool_stream_ops* ops, const void* prepared,
                                  const void* input, void* output, void* scratch, size_t scratch_bytes) {
  const rnnpool_config* cfg = &l->cfg;
  const int32_t r = cfg->patch_rows, c = cfg->patch_cols;
  const int32_t sr = cfg->stride_rows, sc = cfg->stride_cols;
  const int32_t ho = l->geo.out_rows, wo = l->geo.out_cols;
  const size_t sbytes = ops->state_bytes, pbytes = ops->proj_bytes;
  const size_t in_image = (size_t)cfg->in_rows * (size_t)cfg->in_cols * ops->in_pixel_bytes;
  const int32_t wpo = l->geo.padded_out_cols; /* output row length, right padding included */
  const size_t out_row = (size_t)wpo * ops->out_pixel_bytes;
  const size_t out_image = (size_t)l->geo.padded_out_rows * out_row;
  const stream_regions s = regions(l, ops);
  uint8_t* const base = (uint8_t*)scratch;
  uint8_t *row_states, *col_states, *ring, *col_ring;
  step_batch batch;
  int32_t n, y, x, i, j;

  if (input == NULL || output == NULL || scratch == NULL) return RNNPOOL_ERR_NULL_POINTER;
  if (!s.ok) return RNNPOOL_ERR_SIZE_OVERFLOW;
  if (scratch_bytes < s.total) return RNNPOOL_ERR_BUFFER_TOO_SMALL;
  if (!rnnpool_is_aligned(scratch, RNNPOOL_ALIGN)) return RNNPOOL_ERR_MISALIGNED;
  row_states = base + s.row_states;
  col_states = base + s.col_states;
  ring = base + s.ring;
  col_ring = base + s.col_ring;
  batch.ops = ops;
  batch.prepared = prepared;
  batch.work = base + s.work;

  for (n = 0; n < cfg->batch; ++n) {
    const uint8_t* in = (const uint8_t*)input + (size_t)n * in_image;
    uint8_t* out = (uint8_t*)output + (size_t)n * out_image;
    for (y = 0; y < l->used_rows; ++y) {
      const int32_t i_lo = first_window(y, r, sr);
      const int32_t i_hi = y / sr < ho - 1 ? y / sr : ho - 1;
      const int32_t i_done = window_ending_at(y, r, sr); /* patch row completed by this row */
      const int32_t yi = y - l->geo.pad_top;
      const int real_row = yi >= 0 && yi < cfg->in_rows;
      uint8_t* const ring_row = ring + (size_t)(y % r) * (size_t)wo * pbytes;
      if (i_lo > i_hi) continue; /* between patch rows (stride > patch) */
      for (x = 0; x < l->used_cols; ++x) {
        const int32_t j_lo = first_window(x, c, sc);
        const int32_t j_hi = x / sc < wo - 1 ? x / sc : wo - 1;
        const int32_t j_done = window_ending_at(x, c, sc); /* row segment completed at this pixel */
        const int32_t xi = x - l->geo.pad_left;
        if (j_lo > j_hi) continue; /* between patch columns */
        ops->project(prepared,
                     real_row && xi >= 0 && xi < cfg->in_cols
                         ? in + ((size_t)yi * (size_t)cfg->in_cols + (size_t)xi) * ops->in_pixel_bytes
                         : NULL,
                     batch.work);
        batch.fresh_done = NULL;
        batch.pending = NULL;
        for (j = j_lo; j <= j_hi; ++j) {
          batch_add(&batch, row_states + (size_t)(j % l->row_slots) * sbytes, x == j * sc);
        }
        for (i = i_lo; i <= i_hi; ++i) {
          batch_add(&batch, col_states + ((size_t)(i % l->col_slots) * (size_t)l->used_cols + (size_t)x) * sbytes,
                    y == i * sr);
        }
        if (batch.pending != NULL) ops->step(prepared, batch.pending, NULL, batch.work);
        if (j_done >= 0) {
          ops->summarize(prepared, row_states + (size_t)(j_done % l->row_slots) * sbytes,
                         ring_row + (size_t)j_done * pbytes, batch.work);
        }
        if (i_done >= 0) {
          ops->summarize(prepared,
                         col_states + ((size_t)(i_done % l->col_slots) * (size_t)l->used_cols + (size_t)x) * sbytes,
                         col_ring + (size_t)(x % c) * pbytes, batch.work);
          if (j_done >= 0) { /* the last pixel of patch (i_done, j_done) */
            rnnpool_patch_view view;
            view.row_ring = ring + (size_t)j_done * pbytes;
            view.row_slot_bytes = (size_t)wo * pbytes;
            view.row_first = (i_done * sr) % r;
            view.rows = r;
            view.col_ring = col_ring;
            view.col_slot_bytes = pbytes;
            view.col_first = (j_done * sc) % c;
            view.cols = c;
            ops->patch(prepared, &view, out + (size_t)i_done * out_row + (size_t)j_done * ops->out_pixel_bytes,
                       batch.work);
            if (j_done == wo - 1) {
              pad_right(out + (size_t)i_done * out_row, wo, cfg->output_pad_right, ops->out_pixel_bytes);
              if (i_done == ho - 1) pad_bottom(out, ho, cfg->output_pad_bottom, out_row);
            }
          }
        }
      }
    }
  }
  return RNNPOOL_OK;
}
