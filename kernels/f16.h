/* f16.h - IEEE half and bfloat16 <-> float conversion (bit-exact, round to nearest even).
 * Scalar reference versions; the bulk converters are what loaders call. */
#ifndef UPQ_F16_H
#define UPQ_F16_H

#include <stdint.h>

float kq_f16_to_f32(uint16_t h);
uint16_t kq_f32_to_f16(float f);
float kq_bf16_to_f32(uint16_t h);
uint16_t kq_f32_to_bf16(float f);

void kq_f16_to_f32_n(float *restrict out, const uint16_t *restrict in, int64_t n);
void kq_bf16_to_f32_n(float *restrict out, const uint16_t *restrict in, int64_t n);
void kq_f32_to_f16_n(uint16_t *restrict out, const float *restrict in, int64_t n);
void kq_f32_to_bf16_n(uint16_t *restrict out, const float *restrict in, int64_t n);

#endif
