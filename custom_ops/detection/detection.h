/* Detector post-processing: portable C99, no heap, no TensorFlow.
 *
 * Turns the head outputs of an S3FD-style detector (the zoo's Face-M4 and
 * Face-Quant: one (loc, conf) pair of NHWC maps per head, int8 or float32)
 * into boxes: dequantize, max-out background, softmax, decode against the
 * priors, confidence threshold, greedy NMS per class, top-k. Every step is
 * the arithmetic docs/detection.md specifies; the NumPy reference
 * (rnnpool_tflm.detection.postprocess) follows the same document, and the
 * two give bit-identical boxes and scores in the same order (tests check it).
 *
 * Use, CMSIS-NN style:
 *   1. fill a detection_dims (image and head geometry, classes) and a
 *      detection_params (variances, thresholds, top-ks);
 *      detection_validate(dims, params) says whether they are usable;
 *   2. S = detection_scratch_bytes(dims, params) bytes of 4-byte aligned
 *      scratch, and room for params->top_k detection_box entries;
 *   3. detection_run(dims, params, tensors, scratch, S, boxes, capacity, &n)
 *      per inference. It allocates nothing, reads the tensors and writes only
 *      the scratch and boxes[0 .. n-1] (best first); nothing in the scratch is
 *      needed by a later call. Every argument is validated first.
 *
 * Priors are generated from the geometry (no table): the prior of cell
 * (i, j) of head h is centred at ((j + 0.5) * stride / image_cols,
 * (i + 0.5) * stride / image_rows), anchor / image_cols wide and
 * anchor / image_rows high. Computed in float32 this is bit-identical to the
 * float64-then-float32 priors of rnnpool_tflm.detection.priors as long as the
 * anchor is a float32 value (the validator keeps every product exact).
 *
 * Scratch (bytes), with K = min(nms_top_k, number of priors), C = num_classes,
 * A(v) = v rounded up to a multiple of 8:
 *     A(8 * K * (C - 1))   the best K candidates of each class (score, prior)
 *   + A(16 * K)            their decoded boxes, one class at a time
 *   + A(K)                 their suppression flags
 * e.g. Face-M4 (3000 priors, 2 classes) with nms_top_k = 200: 5000 bytes.
 * No pointers or size_t are stored, so the size is the same on a 64-bit host
 * and a 32-bit microcontroller.
 *
 * Floating point: the results are bit-exact where float32 operations are
 * evaluated one by one (FLT_EVAL_METHOD 0: SSE hosts, Arm; not x87). detection.c
 * forbids fused multiply-add itself (pragmas for GCC and Clang; other compilers:
 * turn FP contraction off). exp is detection_expf below, not libm's, so every
 * platform computes the same values. */
#ifndef DETECTION_H_
#define DETECTION_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. The validator reports the first problem in this order:
 * pointers, image, head count, classes, heads, prior count, variances,
 * thresholds, top-ks, then (run) tensors, scratch, box capacity. */
typedef enum {
  DETECTION_OK = 0,
  DETECTION_ERR_NULL_POINTER = 1,      /* a required pointer (argument or tensor data) is NULL */
  DETECTION_ERR_BAD_IMAGE = 2,         /* image_rows or image_cols outside 1..DETECTION_MAX_IMAGE_SIDE */
  DETECTION_ERR_BAD_HEAD_COUNT = 3,    /* num_heads outside 1..DETECTION_MAX_HEADS */
  DETECTION_ERR_BAD_CLASSES = 4,       /* num_classes outside 2..DETECTION_MAX_CLASSES, or maxout_first not 0/1 */
  DETECTION_ERR_BAD_HEAD = 5,          /* a head's rows, cols or stride < 1, its map larger than the image,
                                          a prior centre beyond 2^22 pixels, or an anchor not positive finite */
  DETECTION_ERR_TOO_MANY_PRIORS = 6,   /* more than DETECTION_MAX_PRIORS priors in all */
  DETECTION_ERR_BAD_VARIANCE = 7,      /* a variance not positive finite */
  DETECTION_ERR_BAD_THRESHOLD = 8,     /* conf_threshold or nms_iou outside [0, 1] (or NaN) */
  DETECTION_ERR_BAD_TOP_K = 9,         /* nms_top_k or top_k outside 1..DETECTION_MAX_TOP_K */
  DETECTION_ERR_BAD_TENSOR_TYPE = 10,  /* a tensor type other than DETECTION_INT8 / DETECTION_FLOAT32 */
  DETECTION_ERR_TENSOR_SIZE = 11,      /* a tensor's element count differs from its head's map */
  DETECTION_ERR_BAD_SCALE = 12,        /* an int8 tensor's scale not positive finite */
  DETECTION_ERR_BAD_ZERO_POINT = 13,   /* an int8 tensor's zero point outside [-128, 127] */
  DETECTION_ERR_BUFFER_TOO_SMALL = 14, /* scratch smaller than detection_scratch_bytes, or box capacity < top_k */
  DETECTION_ERR_MISALIGNED = 15,       /* scratch or float32 tensor data not 4-byte aligned */
  DETECTION_STATUS_COUNT = 16
} detection_status;

#define DETECTION_MAX_HEADS 8
#define DETECTION_MAX_CLASSES 32 /* background included */
#define DETECTION_MAX_IMAGE_SIDE 65536
#define DETECTION_MAX_PRIORS (1 << 22)
#define DETECTION_MAX_TOP_K 65536
/* Head 0 of the zoo's detectors may carry S3FD's max-out background: this many
 * background channels, of which the largest is the background logit. */
#define DETECTION_MAXOUT_BACKGROUND 3

typedef struct {
  int32_t rows;   /* feature map rows (loc map [rows][cols][4], conf [rows][cols][conf channels]) */
  int32_t cols;   /* feature map columns */
  int32_t stride; /* image pixels between neighbouring priors */
  float anchor;   /* prior side in image pixels (a float32 value, > 0) */
} detection_head;

typedef struct {
  int32_t image_rows; /* the detector's input image, pixels */
  int32_t image_cols;
  int32_t num_heads;    /* 1..DETECTION_MAX_HEADS; heads[num_heads..] are not read */
  int32_t num_classes;  /* background (class 0) included, 2..DETECTION_MAX_CLASSES */
  int32_t maxout_first; /* 1: head 0's conf has DETECTION_MAXOUT_BACKGROUND background channels */
  detection_head heads[DETECTION_MAX_HEADS];
} detection_dims;

/* Conf channels of head h: num_classes, plus DETECTION_MAXOUT_BACKGROUND - 1
 * for head 0 with maxout_first. Priors: head by head, each row-major. */

typedef struct {
  float variance_center; /* box coding variances (0.1, 0.2 for S3FD), > 0 */
  float variance_size;
  float conf_threshold; /* a class score must be greater than this, [0, 1] */
  float nms_iou;        /* a box is suppressed by a kept one when their IoU is greater, [0, 1] */
  int32_t nms_top_k;    /* candidates per class entering NMS (the best by score), 1..DETECTION_MAX_TOP_K */
  int32_t top_k;        /* detections kept over all classes, 1..DETECTION_MAX_TOP_K */
} detection_params;

typedef enum { DETECTION_INT8 = 0, DETECTION_FLOAT32 = 1 } detection_tensor_type;

/* One head output, NHWC with batch 1. int8 values mean scale * (q - zero_point). */
typedef struct {
  const void* data;
  int32_t type;       /* detection_tensor_type */
  int32_t elements;   /* element count of data (rows * cols * channels) */
  float scale;        /* int8 only */
  int32_t zero_point; /* int8 only */
} detection_tensor;

/* One detection: normalised corner coordinates (not clipped to the image). */
typedef struct {
  float x1, y1, x2, y2;
  float score;   /* the class's softmax probability */
  int32_t label; /* 1..num_classes - 1 */
  int32_t prior; /* index of the prior it was decoded from */
} detection_box;

/* Checks dims and params alone. */
detection_status detection_validate(const detection_dims* dims, const detection_params* params);

/* Scratch bytes for detection_run (see the top of this file); 0 when dims or params are invalid. */
size_t detection_scratch_bytes(const detection_dims* dims, const detection_params* params);

/* Number of priors (sum of rows * cols); 0 when dims are invalid. */
int32_t detection_num_priors(const detection_dims* dims);

/* Prior `index` as (cx, cy, w, h), normalised; DETECTION_ERR_BAD_HEAD for an index outside the priors. */
detection_status detection_prior(const detection_dims* dims, int32_t index, float out[4]);

/* tensors: 2 * num_heads entries, loc0, conf0, loc1, conf1, ... Writes up to
 * params->top_k boxes (box_capacity must be at least that), best first: by
 * score, then label, then prior. *box_count = 0 on failure. */
detection_status detection_run(const detection_dims* dims, const detection_params* params,
                               const detection_tensor* tensors, void* scratch, size_t scratch_bytes,
                               detection_box* boxes, int32_t box_capacity, int32_t* box_count);

/* exp in float32 operations only (docs/detection.md): Cody-Waite reduction by
 * ln 2, a degree-7 Taylor polynomial, scaling by 2^n; within 2 ulp of exp;
 * 0 below -87, +inf above 88, NaN for NaN. */
float detection_expf(float x);

/* A short English description of a status; the enumerator's name (NULL for an unknown value). */
const char* detection_status_str(detection_status status);
const char* detection_status_name(detection_status status);

#ifdef __cplusplus
}
#endif

#endif /* DETECTION_H_ */
