/* The drivers shared by the int8 and float32 kernels: what is computed when
 * (docs/kernel.md, "Work organisation"). Two organisations of the same values,
 * chosen by cfg.rnn1_mode:
 *
 * RNNPOOL_RNN1_CACHED walks the (padded) map once, row by row, pixel by pixel,
 * and keeps only what later pixels need:
 *   - each pixel is W1-projected once, then steps every RNN1 segment that
 *     contains it: the row segments of the patch columns covering it
 *     (at most Ac = ceil(c/sc), states in `row_states`) and the column
 *     segments of the patch rows covering its row (at most Ar = ceil(r/sr),
 *     states in `col_states[Ar][Wu]`); segments starting at the pixel share
 *     one first step;
 *   - a finished row summary is W2-projected once into a ring of r image
 *     rows (`ring[r][Wo]`); a finished column summary into a ring of c
 *     columns (`col_ring[c]`);
 *   - a patch is pooled (RNN2) as soon as its last pixel is done.
 * Every segment and summary is computed exactly once, whatever the overlap of
 * the patches.
 *
 * RNNPOOL_RNN1_RECOMPUTE pools one patch after the other (row-major) and
 * keeps nothing between patches: the patch's r row sequences (two at a time),
 * their summaries, RNN2 over them; then its c column sequences. Scratch: two
 * RNN1 states and inputs, max(r, c) projected summaries and the work area.
 *
 * Both write the output replicate padding the same way: after the last patch
 * of a patch row its output_pad_right copies, after the image's last patch the
 * output_pad_bottom copies of the last (padded) row. */
#include <string.h>

#include "rnnpool_internal.h"

typedef struct {
  size_t work, input, row_states, col_states, ring, col_ring, total; /* cached */
  size_t states, inputs, summaries, half_pixel;                      /* recompute */
  int ok;
} stream_regions;

static stream_regions regions(const rnnpool_layout* l, const rnnpool_stream_ops* ops) {
  stream_regions s;
  size_t cursor = 0;
  memset(&s, 0, sizeof(s));
  s.ok = 1;
  s.work = rnnpool_take(&cursor, ops->work_bytes, &s.ok);
  if (l->cfg.rnn1_mode == RNNPOOL_RNN1_RECOMPUTE) {
    const size_t longest = (size_t)(l->cfg.patch_rows > l->cfg.patch_cols ? l->cfg.patch_rows : l->cfg.patch_cols);
    s.states = rnnpool_take(&cursor, rnnpool_mul(2, ops->state_bytes, &s.ok), &s.ok);
    s.inputs = rnnpool_take(&cursor, rnnpool_mul(2, ops->input_bytes, &s.ok), &s.ok);
    s.summaries = rnnpool_take(&cursor, rnnpool_mul(longest, ops->proj_bytes, &s.ok), &s.ok);
    s.half_pixel = rnnpool_take(&cursor, ops->out_pixel_bytes / 2, &s.ok);
    s.total = cursor;
    return s;
  }
  s.input = rnnpool_take(&cursor, ops->input_bytes, &s.ok);
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

/* Replicate padding: pad_right copies of a finished output row's last pixel;
 * pad_bottom copies of the last (padded) row of a finished image. */
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

/* Output patch (i, j) is written: pad what it completes. */
static void pad_after(const rnnpool_layout* l, uint8_t* image, int32_t i, int32_t j, size_t pixel_bytes) {
  const size_t row_bytes = (size_t)l->geo.padded_out_cols * pixel_bytes;
  if (j != l->geo.out_cols - 1) return;
  pad_right(image + (size_t)i * row_bytes, l->geo.out_cols, l->cfg.output_pad_right, pixel_bytes);
  if (i == l->geo.out_rows - 1) pad_bottom(image, l->geo.out_rows, l->cfg.output_pad_bottom, row_bytes);
}

/* The input pixel at padded coordinates (y, x), or NULL for zero padding. */
static const void* pixel_at(const rnnpool_layout* l, const uint8_t* image, int32_t y, int32_t x, size_t pixel_bytes) {
  const int32_t yi = y - l->geo.pad_top, xi = x - l->geo.pad_left;
  if (yi < 0 || yi >= l->cfg.in_rows || xi < 0 || xi >= l->cfg.in_cols) return NULL;
  return image + ((size_t)yi * (size_t)l->cfg.in_cols + (size_t)xi) * pixel_bytes;
}

/* ---- RNNPOOL_RNN1_CACHED ----------------------------------------------------------- */

/* Collects the segments stepped at one pixel: the first fresh one gets the
 * first step computed, the others copy it; continuing ones go in pairs. */
typedef struct {
  const rnnpool_stream_ops* ops;
  const void* prepared;
  const void* input;
  void* work;
  void* fresh_done;
  void* pending;
} step_batch;

static void batch_add(step_batch* b, uint8_t* state, int fresh) {
  if (fresh) {
    if (b->fresh_done == NULL) {
      b->ops->fresh(b->prepared, b->input, state, b->work);
      b->fresh_done = state;
    } else {
      memcpy(state, b->fresh_done, b->ops->state_bytes);
    }
  } else if (b->pending == NULL) {
    b->pending = state;
  } else {
    b->ops->step(b->prepared, b->pending, b->input, state, b->input, b->work);
    b->pending = NULL;
  }
}

static void run_cached(const rnnpool_layout* l, const rnnpool_stream_ops* ops, const void* prepared, const uint8_t* in,
                       uint8_t* out, uint8_t* base, const stream_regions* s) {
  const rnnpool_config* cfg = &l->cfg;
  const int32_t r = cfg->patch_rows, c = cfg->patch_cols;
  const int32_t sr = cfg->stride_rows, sc = cfg->stride_cols;
  const int32_t ho = l->geo.out_rows, wo = l->geo.out_cols;
  const size_t sbytes = ops->state_bytes, pbytes = ops->proj_bytes;
  const size_t out_row = (size_t)l->geo.padded_out_cols * ops->out_pixel_bytes;
  const size_t half = ops->out_pixel_bytes / 2;
  uint8_t* const row_states = base + s->row_states;
  uint8_t* const col_states = base + s->col_states;
  uint8_t* const ring = base + s->ring;
  uint8_t* const col_ring = base + s->col_ring;
  step_batch batch;
  int32_t y, x, i, j;
  batch.ops = ops;
  batch.prepared = prepared;
  batch.input = base + s->input;
  batch.work = base + s->work;
  for (y = 0; y < l->used_rows; ++y) {
    const int32_t i_lo = first_window(y, r, sr);
    const int32_t i_hi = y / sr < ho - 1 ? y / sr : ho - 1;
    const int32_t i_done = window_ending_at(y, r, sr); /* patch row completed by this row */
    uint8_t* const ring_row = ring + (size_t)(y % r) * (size_t)wo * pbytes;
    if (i_lo > i_hi) continue; /* between patch rows (stride > patch) */
    for (x = 0; x < l->used_cols; ++x) {
      const int32_t j_lo = first_window(x, c, sc);
      const int32_t j_hi = x / sc < wo - 1 ? x / sc : wo - 1;
      const int32_t j_done = window_ending_at(x, c, sc); /* row segment completed at this pixel */
      if (j_lo > j_hi) continue;                         /* between patch columns */
      ops->project(prepared, pixel_at(l, in, y, x, ops->in_pixel_bytes), base + s->input, batch.work);
      batch.fresh_done = NULL;
      batch.pending = NULL;
      for (j = j_lo; j <= j_hi; ++j) {
        batch_add(&batch, row_states + (size_t)(j % l->row_slots) * sbytes, x == j * sc);
      }
      for (i = i_lo; i <= i_hi; ++i) {
        batch_add(&batch, col_states + ((size_t)(i % l->col_slots) * (size_t)l->used_cols + (size_t)x) * sbytes,
                  y == i * sr);
      }
      if (batch.pending != NULL) ops->step(prepared, batch.pending, batch.input, NULL, NULL, batch.work);
      if (j_done >= 0) {
        ops->summarize(prepared, row_states + (size_t)(j_done % l->row_slots) * sbytes,
                       ring_row + (size_t)j_done * pbytes, batch.work);
      }
      if (i_done >= 0) {
        ops->summarize(prepared,
                       col_states + ((size_t)(i_done % l->col_slots) * (size_t)l->used_cols + (size_t)x) * sbytes,
                       col_ring + (size_t)(x % c) * pbytes, batch.work);
        if (j_done >= 0) { /* the last pixel of patch (i_done, j_done) */
          uint8_t* const pixel = out + (size_t)i_done * out_row + (size_t)j_done * ops->out_pixel_bytes;
          rnnpool_sequence rows, cols;
          rows.ring = ring + (size_t)j_done * pbytes;
          rows.slot_bytes = (size_t)wo * pbytes;
          rows.first = (i_done * sr) % r;
          rows.slots = rows.steps = r;
          cols.ring = col_ring;
          cols.slot_bytes = pbytes;
          cols.first = (j_done * sc) % c;
          cols.slots = cols.steps = c;
          ops->pool(prepared, &rows, pixel, batch.work);
          ops->pool(prepared, &cols, pixel + half, batch.work);
          pad_after(l, out, i_done, j_done, ops->out_pixel_bytes);
        }
      }
    }
  }
}

/* ---- RNNPOOL_RNN1_RECOMPUTE ---------------------------------------------------------- */

/* The `count` sequences of one patch in one direction (rows: sequence t is
 * padded row y0 + t over columns x0 .. x0 + c - 1; columns: transposed), two
 * at a time, their summaries into `summaries`, then RNN2 over them. */
static void recompute_direction(const rnnpool_layout* l, const rnnpool_stream_ops* ops, const void* prepared,
                                const uint8_t* in, uint8_t* base, const stream_regions* s, int32_t y0, int32_t x0,
                                int columns, void* out_half) {
  const int32_t count = columns ? l->cfg.patch_cols : l->cfg.patch_rows;
  const int32_t steps = columns ? l->cfg.patch_rows : l->cfg.patch_cols;
  uint8_t* const a = base + s->states;
  uint8_t* const b = a + ops->state_bytes;
  uint8_t* const ia = base + s->inputs;
  uint8_t* const ib = ia + ops->input_bytes;
  uint8_t* const summaries = base + s->summaries;
  void* const work = base + s->work;
  rnnpool_sequence seq;
  int32_t t, u;
  for (t = 0; t < count; t += 2) {
    const int two = t + 1 < count;
    for (u = 0; u < steps; ++u) {
      const int32_t ya = columns ? y0 + u : y0 + t, xa = columns ? x0 + t : x0 + u;
      ops->project(prepared, pixel_at(l, in, ya, xa, ops->in_pixel_bytes), ia, work);
      if (two) ops->project(prepared, pixel_at(l, in, ya + !columns, xa + columns, ops->in_pixel_bytes), ib, work);
      if (u == 0) {
        ops->fresh(prepared, ia, a, work);
        if (two) ops->fresh(prepared, ib, b, work);
      } else {
        ops->step(prepared, a, ia, two ? b : NULL, ib, work);
      }
    }
    ops->summarize(prepared, a, summaries + (size_t)t * ops->proj_bytes, work);
    if (two) ops->summarize(prepared, b, summaries + (size_t)(t + 1) * ops->proj_bytes, work);
  }
  seq.ring = summaries;
  seq.slot_bytes = ops->proj_bytes;
  seq.first = 0;
  seq.slots = seq.steps = count;
  ops->pool(prepared, &seq, out_half, work);
}

/* The rows' half of an output pixel waits in the scratch until the columns
 * (which read the patch again) are done: the output is written only after the
 * last read of its patch (what the in-place lag relies on). */
static void run_recompute(const rnnpool_layout* l, const rnnpool_stream_ops* ops, const void* prepared,
                          const uint8_t* in, uint8_t* out, uint8_t* base, const stream_regions* s) {
  const size_t out_row = (size_t)l->geo.padded_out_cols * ops->out_pixel_bytes;
  const size_t half = ops->out_pixel_bytes / 2;
  uint8_t* const rows_half = base + s->half_pixel;
  int32_t i, j;
  for (i = 0; i < l->geo.out_rows; ++i) {
    for (j = 0; j < l->geo.out_cols; ++j) {
      uint8_t* const pixel = out + (size_t)i * out_row + (size_t)j * ops->out_pixel_bytes;
      const int32_t y0 = i * l->cfg.stride_rows, x0 = j * l->cfg.stride_cols;
      recompute_direction(l, ops, prepared, in, base, s, y0, x0, 0, rows_half);
      recompute_direction(l, ops, prepared, in, base, s, y0, x0, 1, pixel + half);
      memcpy(pixel, rows_half, half);
      pad_after(l, out, i, j, ops->out_pixel_bytes);
    }
  }
}

rnnpool_status rnnpool_stream_run(const rnnpool_layout* l, const rnnpool_stream_ops* ops, const void* prepared,
                                  const void* input, void* output, void* scratch, size_t scratch_bytes) {
  const rnnpool_config* cfg = &l->cfg;
  const size_t in_image = (size_t)cfg->in_rows * (size_t)cfg->in_cols * ops->in_pixel_bytes;
  const size_t out_image = (size_t)l->geo.padded_out_rows * (size_t)l->geo.padded_out_cols * ops->out_pixel_bytes;
  const stream_regions s = regions(l, ops);
  int32_t n;
  if (input == NULL || output == NULL || scratch == NULL) return RNNPOOL_ERR_NULL_POINTER;
  if (!s.ok) return RNNPOOL_ERR_SIZE_OVERFLOW;
  if (scratch_bytes < s.total) return RNNPOOL_ERR_BUFFER_TOO_SMALL;
  if (!rnnpool_is_aligned(scratch, RNNPOOL_ALIGN)) return RNNPOOL_ERR_MISALIGNED;
  for (n = 0; n < cfg->batch; ++n) {
    const uint8_t* in = (const uint8_t*)input + (size_t)n * in_image;
    uint8_t* out = (uint8_t*)output + (size_t)n * out_image;
    if (cfg->rnn1_mode == RNNPOOL_RNN1_RECOMPUTE) {
      run_recompute(l, ops, prepared, in, out, (uint8_t*)scratch, &s);
    } else {
      run_cached(l, ops, prepared, in, out, (uint8_t*)scratch, &s);
    }
  }
  return RNNPOOL_OK;
}

/* ---- in place: how far the output may overlap the input ---------------------------------- */

/* The drivers read each input pixel, then write output after it, in a fixed
 * order; an output write is safe when it lands below every input byte still to
 * be read. For one write of output bytes [.., end) (offsets from the output
 * start) with the next input read at `next` (offset from the input start),
 * that is output_start + end <= input_start + next, i.e. input_start -
 * output_start >= end - next. The lag is the largest end - next over the
 * writes (docs/kernel.md, "In place"). */

typedef struct {
  const rnnpool_layout* l;
  int64_t pixel_in, pixel_out; /* bytes of one input / output pixel */
  int64_t during;              /* max end - next over writes followed by a read of the same image */
  int64_t after;               /* max end over writes after the image's last read */
  int any_during, any_after;
} lag_scan;

/* Smallest v' >= v with v' < used that a window [i*s, i*s + p) covers (i < count), or -1. */
static int32_t next_covered(int32_t v, int32_t p, int32_t s, int32_t used) {
  if (v < 0) v = 0;
  if (v >= used) return -1;
  if (s > p && v % s >= p) v = (v / s + 1) * s; /* between windows: the next window's start */
  return v < used ? v : -1;
}

/* Offset (bytes) of the first input pixel the cached driver reads at or after
 * padded (y, x) in its raster order, or -1 if it reads no more of the image. */
static int64_t cached_next_read(const rnnpool_layout* l, int32_t y, int32_t x, int64_t pixel_in) {
  const rnnpool_config* c = &l->cfg;
  const int32_t row_end = l->used_rows < l->geo.pad_top + c->in_rows ? l->used_rows : l->geo.pad_top + c->in_rows;
  const int32_t col_end = l->used_cols < l->geo.pad_left + c->in_cols ? l->used_cols : l->geo.pad_left + c->in_cols;
  if (y < l->geo.pad_top) {
    y = l->geo.pad_top;
    x = 0;
  }
  for (;;) {
    int32_t yy = next_covered(y, c->patch_rows, c->stride_rows, row_end), xx;
    if (yy < 0) return -1;
    if (yy != y) x = 0;
    xx = next_covered(x < l->geo.pad_left ? l->geo.pad_left : x, c->patch_cols, c->stride_cols, col_end);
    if (xx >= 0) {
      return ((int64_t)(yy - l->geo.pad_top) * c->in_cols + (xx - l->geo.pad_left)) * pixel_in;
    }
    y = yy + 1;
    x = 0;
  }
}

/* Offset (bytes) of the first real input pixel of patch (i, j)'s window (every window has one). */
static int64_t window_first_pixel(const rnnpool_layout* l, int32_t i, int32_t j, int64_t pixel_in) {
  const int32_t y = i * l->cfg.stride_rows - l->geo.pad_top, x = j * l->cfg.stride_cols - l->geo.pad_left;
  return ((int64_t)(y > 0 ? y : 0) * l->cfg.in_cols + (x > 0 ? x : 0)) * pixel_in;
}

static void lag_write(lag_scan* s, int64_t end, int64_t next) {
  if (next < 0) {
    if (!s->any_after || end > s->after) s->after = end;
    s->any_after = 1;
  } else {
    if (!s->any_during || end - next > s->during) s->during = end - next;
    s->any_during = 1;
  }
}

/* End offset (bytes) of what completing patch (i, j) writes: its pixel, the
 * row's right padding after its last patch, the bottom padding after the last one. */
static int64_t write_end(const rnnpool_layout* l, int32_t i, int32_t j, int64_t pixel_out) {
  const int64_t row = (int64_t)l->geo.padded_out_cols * pixel_out;
  if (j < l->geo.out_cols - 1) return i * row + (int64_t)(j + 1) * pixel_out;
  if (i < l->geo.out_rows - 1) return (int64_t)(i + 1) * row;
  return (int64_t)l->geo.padded_out_rows * row;
}

rnnpool_status rnnpool_stream_inplace_lag(const rnnpool_layout* l, size_t in_pixel_bytes, size_t out_pixel_bytes,
                                          int64_t* lag_bytes) {
  const rnnpool_config* c = &l->cfg;
  const int64_t in_image = (int64_t)c->in_rows * c->in_cols * (int64_t)in_pixel_bytes;
  const int64_t out_image = (int64_t)l->geo.padded_out_rows * l->geo.padded_out_cols * (int64_t)out_pixel_bytes;
  const int64_t grow = out_image - in_image > 0 ? out_image - in_image : 0; /* per image of the batch */
  lag_scan s;
  int64_t lag;
  int32_t i, j;
  if (lag_bytes == NULL) return RNNPOOL_ERR_NULL_POINTER;
  memset(&s, 0, sizeof(s));
  s.l = l;
  s.pixel_in = (int64_t)in_pixel_bytes;
  s.pixel_out = (int64_t)out_pixel_bytes;
  for (i = 0; i < l->geo.out_rows; ++i) {
    for (j = 0; j < l->geo.out_cols; ++j) {
      int64_t next;
      if (c->rnn1_mode == RNNPOOL_RNN1_RECOMPUTE) { /* the next patches' first pixels */
        const int64_t right = j + 1 < l->geo.out_cols ? window_first_pixel(l, i, j + 1, s.pixel_in) : -1;
        const int64_t below = i + 1 < l->geo.out_rows ? window_first_pixel(l, i + 1, 0, s.pixel_in) : -1;
        next = right < 0 ? below : (below < 0 || right < below ? right : below);
      } else { /* written while visiting the patch's last pixel, after reading it */
        const int32_t y = i * c->stride_rows + c->patch_rows - 1, x = j * c->stride_cols + c->patch_cols - 1;
        next = cached_next_read(l, y, x + 1, s.pixel_in);
      }
      lag_write(&s, write_end(l, i, j, s.pixel_out), next);
    }
  }
  /* Image n reads at n*in_image and writes at n*out_image; after its last read
   * the next image's first read (its byte 0) bounds it, and nothing bounds the
   * last image's final writes. */
  lag = -(int64_t)c->batch * in_image; /* no constraint: any overlap is fine */
  if (s.any_during) {
    const int64_t v = s.during + (int64_t)(c->batch - 1) * grow;
    if (v > lag) lag = v;
  }
  if (s.any_after && c->batch > 1) {
    const int64_t v = s.after - in_image + (int64_t)(c->batch - 2) * grow;
    if (v > lag) lag = v;
  }
  *lag_bytes = lag;
  return RNNPOOL_OK;
}
