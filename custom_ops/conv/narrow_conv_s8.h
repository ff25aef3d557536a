/* An int8 CONV_2D kernel for narrow convolutions: few output channels (at
 * most NARROW_CONV_MAX_CHANNELS), such as Face-M4's stem (3x3, 1 -> 4
 * channels) and its detection heads (3x3, 32 or 64 -> 2 or 4 channels), where
 * CMSIS-NN's im2col + matrix kernel spends most of its time on bookkeeping.
 *
 * Bytes: exactly TFLM's int8 CONV_2D (reference ConvPerChannel and CMSIS-NN's
 * arm_convolve_s8): acc = bias + sum (x + input_offset) * w over the taps
 * inside the image, MultiplyByQuantizedMultiplier per output channel, + the
 * output offset, clamped to the activation range (int8_requant.h).
 *
 * Plain C API in the style of CMSIS-NN (dims and params structs). No heap, no
 * scratch buffer: eval keeps per-channel records on the stack
 * (NARROW_CONV_STACK_BYTES). Output pixels are written in raster order, each
 * right after its window was read, so the in-place lag of a raster walk
 * (docs/arena.md, CONV_2D) holds for this kernel too. */
#ifndef NARROW_CONV_S8_H_
#define NARROW_CONV_S8_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NARROW_CONV_MAX_CHANNELS 8
/* Stack eval uses for its records (upper bound, for the firmware's stack budget). */
#define NARROW_CONV_STACK_BYTES (NARROW_CONV_MAX_CHANNELS * 40 + 64)

typedef enum {
  NARROW_CONV_OK = 0,
  NARROW_CONV_ERR_NULL_POINTER = 1,
  NARROW_CONV_ERR_BAD_DIMS = 2,   /* a dimension below 1, batch != 1, or shapes that disagree */
  NARROW_CONV_ERR_TOO_WIDE = 3,   /* more output channels than NARROW_CONV_MAX_CHANNELS */
  NARROW_CONV_ERR_BAD_PARAMS = 4, /* stride < 1, negative padding, offsets or clamp outside int8 */
  NARROW_CONV_ERR_BAD_SHIFT = 5,  /* a per-channel shift outside [-31, 30] or a negative multiplier */
} narrow_conv_status;

/* NHWC for the input and output, OHWI for the filter (TFLite's layouts). */
typedef struct {
  int32_t n, h, w, c;
} narrow_conv_dims;

typedef struct {
  int32_t input_offset;  /* -(input zero point), in [-127, 128] */
  int32_t output_offset; /* output zero point, in [-128, 127] */
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;     /* leading padding: TFLM's ComputePaddingHeightWidth */
  int32_t act_min, act_max; /* the clamp, within [-128, 127] */
} narrow_conv_params;

/* Per output channel: TFLM's quantized multiplier (M, n): real = M * 2^(n - 31). */
typedef struct {
  const int32_t* multiplier;
  const int32_t* shift;
} narrow_conv_quant;

/* NARROW_CONV_OK when narrow_conv_s8 computes this convolution; otherwise why not.
 * Dilation is 1 and the filter's input channels equal the input's (no groups). */
narrow_conv_status narrow_conv_s8_check(const narrow_conv_params* params, const narrow_conv_dims* input,
                                        const narrow_conv_dims* filter, const narrow_conv_dims* output);

/* output = conv(input, filter) + bias (bias may be NULL), requantized per channel. */
narrow_conv_status narrow_conv_s8(const narrow_conv_params* params, const narrow_conv_quant* quant,
                                  const narrow_conv_dims* input_dims, const int8_t* input,
                                  const narrow_conv_dims* filter_dims, const int8_t* filter, const int32_t* bias,
                                  const narrow_conv_dims* output_dims, int8_t* output);

const char* narrow_conv_status_str(narrow_conv_status status);

#ifdef __cplusplus
}
#endif

#endif /* NARROW_CONV_S8_H_ */
