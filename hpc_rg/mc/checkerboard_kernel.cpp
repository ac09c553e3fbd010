// Fused checkerboard Metropolis / heat-bath sweep for +-1 spin models on the CPU.
//
// Built and loaded by hpc_rg/mc/compiled.py (g++, flags chosen there); see that module for
// the contract. In short: the result is bit-identical to hpc_rg.mc.checkerboard.sweep /
// update_colour (float32 spins, CounterRNG uniforms with counter 2*sweep + colour), because
//
//  * the CounterRNG keys are recomputed from (chain part, global site id) with the same
//    lowbias32 rounds, and the uniform is ((int32 bits >> 8) + 2^23) * 2^-24 as in rng.py;
//  * the local field adds the same terms in the same order (+e0, -e0, +e1, -e1, ...) in
//    float32 with FP contraction off (-ffp-contract=off);
//  * exp2 (Metropolis) and the sigmoid (heat-bath) are evaluated exactly as ATen's CPU
//    kernels do: Sleef_exp2f{16,8}_u10 / Sleef_expf{16,8}_u10 for the vectorised part, and
//    std::exp2 / std::exp for the elements ATen leaves to its scalar tail loop (the flat
//    ranges passed in Args::scalar, computed by compiled.py).
//
// Work layout: spins are (B, n0, n1, n2) row-major; "rows" run along the last lattice axis.
// A colour pass visits only the sites of that colour (every second site of a row):
//  * block512 (AVX-512 builds, rows of 32 k sites, or 3D rows of 16): 16 sites of one colour
//    at a time in registers -- gathered from a 32-float window with one permute, field,
//    hash, exp2 and decision in registers, merged back into the window with masked permutes;
//  * block (AVX2 builds, other row lengths): the same in a few auto-vectorised loops over
//    contiguous scratch arrays (gather, field, uniforms, acceptance, decision, scatter).
// A single-domain sweep runs both colours as a wavefront over the planes of the first axis
// (colour 1 trails colour 0 by a plane), so each plane comes from memory once per sweep.
#include <immintrin.h>
#include <sleef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512F__)
#define VW 16
static inline void vec_exp2(float* x, int64_t n) {  // ATen: Vectorized<float>::exp2()
  for (int64_t i = 0; i < n; i += VW) _mm512_storeu_ps(x + i, Sleef_exp2f16_u10(_mm512_loadu_ps(x + i)));
}
static inline void vec_sigmoid(float* x, int64_t n) {  // ATen sigmoid_kernel: 1 / (exp(0 - x) + 1)
  for (int64_t i = 0; i < n; i += VW) {
    __m512 a = _mm512_sub_ps(_mm512_set1_ps(0.f), _mm512_loadu_ps(x + i));
    a = _mm512_add_ps(Sleef_expf16_u10(a), _mm512_set1_ps(1.f));
    _mm512_storeu_ps(x + i, _mm512_div_ps(_mm512_set1_ps(1.f), a));
  }
}
#elif defined(__AVX2__)
#define VW 8
static inline void vec_exp2(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += VW) _mm256_storeu_ps(x + i, Sleef_exp2f8_u10(_mm256_loadu_ps(x + i)));
}
static inline void vec_sigmoid(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += VW) {
    __m256 a = _mm256_sub_ps(_mm256_set1_ps(0.f), _mm256_loadu_ps(x + i));
    a = _mm256_add_ps(Sleef_expf8_u10(a), _mm256_set1_ps(1.f));
    _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_set1_ps(1.f), a));
  }
}
#else
#error "checkerboard_kernel.cpp needs AVX2 or AVX-512 (the vector width of ATen's CPU kernels)"
#endif

static inline float scalar_exp2(float x) { return std::exp2(x); }                  // ATen scalar tail
static inline float scalar_sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

static inline uint32_t mix32(uint32_t x) {  // lowbias32, as hpc_rg.rng.mix32
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return x;
}

// Field order must match compiled.py's ctypes structure.
struct Args {
  int64_t d, B, N, n0, n1, n2;  // lattice dims (1..3), chains, local sites, local shape (1-padded)
  float* s;                     // (B, N) float32 spins, updated in place
  const float* glo;             // ghost plane x0 - 1 of chain b at glo + b * gstride (halo mode)
  const float* ghi;             // ghost plane x0 + n0
  int64_t gstride;
  const int32_t* cpart;         // (2, B) chain halves of the CounterRNG keys
  int64_t id0;                  // global site id of local site 0 (slab origin * plane size)
  int32_t cm0, cm1;             // counter mixes m(2*sweep), m(2*sweep + 1)
  int64_t par0;                 // parity of the slab origin x0
  int64_t rule;                 // 0 Metropolis, 1 heat-bath
  int64_t ea;                   // 0 Ising, 1 Edwards-Anderson
  const float* fac;             // (B,) Metropolis: float32(-2/ln2 * beta); heat-bath: 2 * beta
  float J, h;                   // Ising coupling and field
  int64_t useJ, useh;           // multiply by J / add h (as ising.local_field does)
  const float* Jp;              // EA: (D, 2, 2d, N/2) couplings packed per colour (see compiled.py)
  const int64_t* jidx;          // EA: (B,) disorder row of each chain
  int64_t nscalar;              // number of flat [lo, hi) ranges ATen evaluates with scalar libm
  const int64_t* scalar;        // (nscalar, 2)
};

struct Work {
  int64_t rpb, cap;             // rows per block, scratch capacity
  std::vector<float> self, nb, f, t, u;
  std::vector<uint32_t> k1, k2;
  std::vector<int64_t> kr;      // colour offset of each row of the block
  Work(int64_t rpb_, int64_t M, int64_t nnb)
      : rpb(rpb_), cap(rpb_ * M + VW), self(cap), nb(nnb * cap), f(cap), t(cap), u(cap), k1(cap), k2(cap),
        kr(rpb_) {}
};

// out[m] = row[2m + k] for m < M
static inline void gather2(float* __restrict out, const float* __restrict row, int64_t M, int64_t k) {
  for (int64_t m = 0; m < M; ++m) out[m] = row[2 * m + k];
}

// row[2m + k] = in[m] for m < M (the other sites of the row untouched)
static inline void scatter2(float* __restrict row, const float* __restrict in, int64_t M, int64_t k) {
  for (int64_t m = 0; m < M; ++m) row[2 * m + k] = in[m];
}

// Colour c on rows [r0, r1) of chain b. Rows run along the last axis and are numbered
// row-major over the other axes of the slab: row r lies in plane x = r / rpp of axis 0.
template <int D, bool EA, int RULE>
static void block(const Args& a, Work& w, int64_t b, int64_t r0, int64_t r1, int c) {
  const int64_t N = a.N;
  const int64_t Lr = D == 1 ? a.n0 : (D == 2 ? a.n1 : a.n2);  // row length
  const int64_t M = Lr / 2;
  const int64_t rpp = D == 3 ? a.n1 : 1;                        // rows per plane
  const int64_t n = (r1 - r0) * M;
  const int64_t cap = w.cap;
  float* sb = a.s + b * N;
  float* self = w.self.data();
  float* nb = w.nb.data();  // 2D neighbour arrays: +e0, -e0, (+e1, -e1,) +e_row, -e_row
  // ---- gather the sites of colour c and their neighbours into contiguous arrays
  int64_t x = D == 1 ? 0 : r0 / rpp, y = D == 3 ? r0 % rpp : 0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k = (c + a.par0 + x + y) & 1;
    w.kr[r - r0] = k;
    const float* row = sb + r * Lr;
    const int64_t o = (r - r0) * M;
    gather2(self + o, row, M, k);
    int q = 0;
    if (D >= 2) {
      const float* up = x + 1 < a.n0 ? row + rpp * Lr : a.ghi + b * a.gstride + y * Lr;
      const float* dn = x > 0 ? row - rpp * Lr : a.glo + b * a.gstride + y * Lr;
      gather2(nb + (q++) * cap + o, up, M, k);
      gather2(nb + (q++) * cap + o, dn, M, k);
    }
    if (D == 3) {
      const float* plane = sb + x * rpp * Lr;
      gather2(nb + (q++) * cap + o, plane + (y + 1 == rpp ? 0 : y + 1) * Lr, M, k);
      gather2(nb + (q++) * cap + o, plane + (y == 0 ? rpp - 1 : y - 1) * Lr, M, k);
    }
    // along the row: +1 is row[2m + k + 1], -1 is row[2m + k - 1]; both are the other colour,
    // oc[m] = row[2m + 1 - k], shifted by one for k = 0 (-1) / k = 1 (+1); periodic (ghosts in 1D)
    float* rp = nb + (q++) * cap + o;
    float* rm = nb + (q++) * cap + o;
    if (k == 0) {
      gather2(rp, row, M, 1);
      std::memcpy(rm + 1, rp, (M - 1) * sizeof(float));
      rm[0] = D == 1 ? a.glo[b * a.gstride] : row[Lr - 1];
    } else {
      gather2(rm, row, M, 0);
      std::memcpy(rp, rm + 1, (M - 1) * sizeof(float));
      rp[M - 1] = D == 1 ? a.ghi[b * a.gstride] : row[0];
    }
    // CounterRNG keys from (chain part, global site id)
    const int64_t gid = a.id0 + r * Lr + k;
    const uint32_t c1 = (uint32_t)a.cpart[b], c2 = (uint32_t)a.cpart[a.B + b];
    uint32_t* __restrict k1 = w.k1.data() + o;
    uint32_t* __restrict k2 = w.k2.data() + o;
    for (int64_t m = 0; m < M; ++m) {
      const uint64_t id = (uint64_t)(gid + 2 * m);
      const uint32_t lo = (uint32_t)id, hi = (uint32_t)(id >> 32);
      k1[m] = mix32(mix32(c1 ^ lo) ^ hi);
      k2[m] = mix32(mix32(c2 ^ lo) ^ hi);
    }
    if (D == 3 && ++y == rpp) { y = 0; ++x; }
    if (D == 2) ++x;
  }
  // ---- local field, in the order of the models' local_field
  constexpr int NNB = 2 * D;
  float* __restrict f = w.f.data();
  if (!EA) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) {
      float v = nb[i] + nb[cap + i];
      for (int q = 2; q < NNB; ++q) v = v + nb[q * cap + i];
      f[i] = v;
    }
    if (a.useJ) for (int64_t i = 0; i < n; ++i) f[i] = f[i] * a.J;
    if (a.useh) for (int64_t i = 0; i < n; ++i) f[i] = f[i] + a.h;
  } else {
    const int64_t half = N / 2;
    const float* Jc = a.Jp + ((a.jidx[b] * 2 + c) * NNB) * half + r0 * M;
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) {
      float v = Jc[i] * nb[i];
      for (int q = 1; q < NNB; ++q) v = v + Jc[q * half + i] * nb[q * cap + i];
      f[i] = v;
    }
  }
  // ---- uniforms (CounterRNG.uniform with counter 2*sweep + c)
  const uint32_t cm = (uint32_t)(c ? a.cm1 : a.cm0);
  float* __restrict u = w.u.data();
  const uint32_t* __restrict k1 = w.k1.data();
  const uint32_t* __restrict k2 = w.k2.data();
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t z = mix32(mix32(k1[i] ^ cm) ^ k2[i]);
    u[i] = ((float)((int32_t)z >> 8) + 8388608.0f) * 5.9604644775390625e-08f;
  }
  // ---- acceptance (checkerboard.update_colour)
  const float fac = a.fac[b];
  float* __restrict t = w.t.data();
  if (RULE == 0) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) {
      const float e = (self[i] * f[i]) * fac;  // -2 beta s f / ln 2
      t[i] = e > 0.f ? 0.f : e;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) t[i] = f[i] * fac;  // 2 beta f
  }
  const int64_t nv = (n + VW - 1) / VW * VW;
  for (int64_t i = n; i < nv; ++i) t[i] = 0.f;
  if (RULE == 0) vec_exp2(t, n); else vec_sigmoid(t, n);
  for (int64_t q = 0; q < a.nscalar; ++q) {  // redo the few elements ATen does in scalar code
    const int64_t lo = a.scalar[2 * q], hi = a.scalar[2 * q + 1];
    if (hi <= b * N + r0 * Lr || lo >= b * N + r1 * Lr) continue;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t k = w.kr[r - r0];
      for (int64_t m = 0; m < M; ++m) {
        const int64_t flat = b * N + r * Lr + 2 * m + k;
        if (flat < lo || flat >= hi) continue;
        const int64_t i = (r - r0) * M + m;
        if (RULE == 0) {
          const float e = (self[i] * f[i]) * fac;
          t[i] = scalar_exp2(e > 0.f ? 0.f : e);
        } else {
          t[i] = scalar_sigmoid(f[i] * fac);
        }
      }
    }
  }
  // ---- decision: Metropolis flips iff u < a (a(0) = 1/2); heat-bath s = +1 iff u <= P(+1)
  if (RULE == 0) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = (self[i] * f[i]) == 0.f ? 0.5f : 1.0f;
      self[i] = u[i] < t[i] * g ? -self[i] : self[i];
    }
  } else {
    for (int64_t i = 0; i < n; ++i) self[i] = u[i] <= t[i] ? 1.0f : -1.0f;
  }
  // ---- scatter
  for (int64_t r = r0; r < r1; ++r) scatter2(sb + r * Lr, self + (r - r0) * M, M, w.kr[r - r0]);
}

#if defined(__AVX512F__)
// ---- AVX-512 path: the same operations as block() on 16 sites of one colour at a time,
// held in registers (no scratch arrays). A window is 32 consecutive floats of the chain:
// 16 sites of one colour of a row of >= 32 sites, or, for 3D rows of 16 sites, 8 + 8
// sites of two consecutive rows of a plane (whose colours alternate).
static inline __m512i mix32v(__m512i x) {
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
  return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

static inline __m512 pick(const float* lo, const float* hi, __m512i idx) {  // of lo[0..16), hi[0..16)
  return _mm512_permutex2var_ps(_mm512_loadu_ps(lo), idx, _mm512_loadu_ps(hi));
}

struct Window {
  __m512 s, nb[6];  // the 16 sites and their neighbours: +e0, -e0, (+e1, -e1,) +e_row, -e_row
  __m512i off;      // position of each site in the window (0..31)
  int64_t flat;     // flat index (b * N + site) of the window start
  uint64_t id;      // global site id of the window start
  const float* J;   // EA: packed couplings of the 16 sites (stride half between directions)
};

// New values of the 16 sites of a window (update_colour on them).
template <int D, bool EA, int RULE>
static inline __m512 update16(const Args& a, const Window& w, int64_t half, __m512 fac, __m512i c1,
                              __m512i c2, __m512i cm) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f);
  constexpr int NNB = 2 * D;
  __m512 v;  // local field, terms in the order of the models' local_field
  if (!EA) {
    v = _mm512_add_ps(w.nb[0], w.nb[1]);
    for (int q = 2; q < NNB; ++q) v = _mm512_add_ps(v, w.nb[q]);
    if (a.useJ) v = _mm512_mul_ps(v, _mm512_set1_ps(a.J));
    if (a.useh) v = _mm512_add_ps(v, _mm512_set1_ps(a.h));
  } else {
    v = _mm512_mul_ps(_mm512_loadu_ps(w.J), w.nb[0]);
    for (int q = 1; q < NNB; ++q) v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_loadu_ps(w.J + q * half), w.nb[q]));
  }
  // CounterRNG key of (chain, global site id), then the uniform of counter 2*sweep + c
  const __m512i base = _mm512_set1_epi32((int)(uint32_t)w.id);
  const __m512i idlo = _mm512_add_epi32(base, w.off);
  __m512i idhi = _mm512_set1_epi32((int)(uint32_t)(w.id >> 32));
  idhi = _mm512_mask_add_epi32(idhi, _mm512_cmplt_epu32_mask(idlo, base), idhi, _mm512_set1_epi32(1));
  const __m512i k1 = mix32v(_mm512_xor_si512(mix32v(_mm512_xor_si512(c1, idlo)), idhi));
  const __m512i k2 = mix32v(_mm512_xor_si512(mix32v(_mm512_xor_si512(c2, idlo)), idhi));
  const __m512i z = mix32v(_mm512_xor_si512(mix32v(_mm512_xor_si512(k1, cm)), k2));
  const __m512 u = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(z, 8)), _mm512_set1_ps(8388608.0f)),
                                 _mm512_set1_ps(5.9604644775390625e-08f));
  __m512 arg, sf = zero, pr;
  if (RULE == 0) {
    sf = _mm512_mul_ps(w.s, v);
    arg = _mm512_mul_ps(sf, fac);  // -2 beta s f / ln 2, clamped at 0
    arg = _mm512_mask_mov_ps(arg, _mm512_cmp_ps_mask(arg, zero, _CMP_GT_OQ), zero);
    pr = Sleef_exp2f16_u10(arg);
  } else {
    arg = _mm512_mul_ps(v, fac);  // 2 beta f
    pr = _mm512_div_ps(one, _mm512_add_ps(Sleef_expf16_u10(_mm512_sub_ps(zero, arg)), one));
  }
  for (int64_t q = 0; q < a.nscalar; ++q) {  // the few elements ATen does in scalar code
    const int64_t lo = a.scalar[2 * q], hi = a.scalar[2 * q + 1];
    if (hi <= w.flat || lo >= w.flat + 32) continue;
    alignas(64) float av[16], pv[16];
    alignas(64) int32_t ov[16];
    _mm512_store_ps(av, arg);
    _mm512_store_ps(pv, pr);
    _mm512_store_si512(ov, w.off);
    for (int i = 0; i < 16; ++i)
      if (w.flat + ov[i] >= lo && w.flat + ov[i] < hi) pv[i] = RULE == 0 ? scalar_exp2(av[i]) : scalar_sigmoid(av[i]);
    pr = _mm512_load_ps(pv);
  }
  if (RULE == 0) {  // flip iff u < a, a(0) = 1/2
    const __m512 g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(sf, zero, _CMP_EQ_OQ), one, _mm512_set1_ps(0.5f));
    return _mm512_mask_sub_ps(w.s, _mm512_cmp_ps_mask(u, _mm512_mul_ps(pr, g), _CMP_LT_OQ), zero, w.s);
  }
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, pr, _CMP_LE_OQ), _mm512_set1_ps(-1.f), one);  // s = +1 iff u <= P
}

template <int D, bool EA, int RULE>
static void block512(const Args& a, int64_t b, int64_t r0, int64_t r1, int c) {
  const int64_t N = a.N, half = N / 2;
  const int64_t Lr = D == 1 ? a.n0 : (D == 2 ? a.n1 : a.n2);
  const int64_t M = Lr / 2;
  const int64_t rpp = D == 3 ? a.n1 : 1;
  const bool pairs = D == 3 && Lr == 16;  // two rows per window
  float* sb = a.s + b * N;
  const float* Jc = EA ? a.Jp + ((a.jidx[b] * 2 + c) * 2 * D) * half : nullptr;
  const __m512 fac = _mm512_set1_ps(a.fac[b]);
  const __m512i cm = _mm512_set1_epi32(c ? a.cm1 : a.cm0);
  const __m512i c1 = _mm512_set1_epi32(a.cpart[b]), c2 = _mm512_set1_epi32(a.cpart[a.B + b]);
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i dup_lo = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i dup_hi = _mm512_add_epi32(dup_lo, _mm512_set1_epi32(8));
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __mmask16 h0 = 0x00FF;
  int64_t x = D == 1 ? 0 : r0 / rpp, y = D == 3 ? r0 % rpp : 0;
  for (int64_t r = r0; r < r1; r += pairs ? 2 : 1) {
    const int64_t k = (c + a.par0 + x + y) & 1;  // colour offset of row r (row r + 1: 1 - k)
    float* row = sb + r * Lr;
    const float *up = row, *dn = row, *up1 = row, *dn1 = row;  // neighbour rows (+-e0, +-e1)
    if (D >= 2) {
      up = x + 1 < a.n0 ? row + rpp * Lr : a.ghi + b * a.gstride + y * Lr;
      dn = x > 0 ? row - rpp * Lr : a.glo + b * a.gstride + y * Lr;
    }
    const float* plane = sb + x * rpp * Lr;
    if (D == 3) {
      up1 = plane + (y + 1 == rpp ? 0 : y + 1) * Lr;
      dn1 = plane + (y == 0 ? rpp - 1 : y - 1) * Lr;
    }
    Window w;
    w.J = nullptr;
    if (!pairs) {
      const __m512i on = _mm512_add_epi32(even, _mm512_set1_epi32((int)k));
      const __m512i off = _mm512_add_epi32(even, _mm512_set1_epi32((int)(1 - k)));
      const __mmask16 keep = k ? 0xAAAA : 0x5555;
      const float wrap_lo = D == 1 ? a.glo[b * a.gstride] : row[Lr - 1];  // row[-1]
      const float wrap_hi = D == 1 ? a.ghi[b * a.gstride] : row[0];       // row[Lr]
      w.off = on;
      for (int64_t m0 = 0; m0 < M; m0 += 16) {
        float* p = row + 2 * m0;
        const __m512 lo = _mm512_loadu_ps(p), hi = _mm512_loadu_ps(p + 16);
        w.s = _mm512_permutex2var_ps(lo, on, hi);
        const __m512 oc = _mm512_permutex2var_ps(lo, off, hi);  // the other colour of the window
        __m512 rp, rm;  // row[2m + k + 1], row[2m + k - 1]
        if (k == 0) {
          rp = oc;
          const __m512 prev = _mm512_set1_ps(m0 == 0 ? wrap_lo : p[-1]);
          rm = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(oc), _mm512_castps_si512(prev), 15));
        } else {
          rm = oc;
          const __m512 next = _mm512_set1_ps(m0 + 16 == M ? wrap_hi : p[32]);
          rp = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(oc), 1));
        }
        int q = 0;
        if (D >= 2) {
          w.nb[q++] = pick(up + 2 * m0, up + 2 * m0 + 16, on);
          w.nb[q++] = pick(dn + 2 * m0, dn + 2 * m0 + 16, on);
        }
        if (D == 3) {
          w.nb[q++] = pick(up1 + 2 * m0, up1 + 2 * m0 + 16, on);
          w.nb[q++] = pick(dn1 + 2 * m0, dn1 + 2 * m0 + 16, on);
        }
        w.nb[q++] = rp;
        w.nb[q++] = rm;
        w.flat = b * N + r * Lr + 2 * m0;
        w.id = (uint64_t)(a.id0 + r * Lr + 2 * m0);
        if (EA) w.J = Jc + r * M + m0;
        const __m512 snew = update16<D, EA, RULE>(a, w, half, fac, c1, c2, cm);
        _mm512_storeu_ps(p, _mm512_mask_permutexvar_ps(lo, keep, dup_lo, snew));
        _mm512_storeu_ps(p + 16, _mm512_mask_permutexvar_ps(hi, keep, dup_hi, snew));
      }
      if (D == 3 && ++y == rpp) { y = 0; ++x; }
      if (D == 2) ++x;
    } else {
      // rows y (colour offset k, lanes 0..7) and y + 1 (1 - k, lanes 8..15) of plane x
      const __m512i kk = _mm512_mask_blend_epi32(h0, _mm512_set1_epi32((int)(1 - k)), _mm512_set1_epi32((int)k));
      const __m512i on = _mm512_add_epi32(even, kk);
      const __m512i off = _mm512_sub_epi32(_mm512_add_epi32(even, _mm512_set1_epi32(1)), kk);
      const __mmask16 keep_lo = k ? 0xAAAA : 0x5555, keep_hi = k ? 0x5555 : 0xAAAA;
      float* row2 = row + Lr;
      const __m512 lo = _mm512_loadu_ps(row), hi = _mm512_loadu_ps(row2);
      w.s = _mm512_permutex2var_ps(lo, on, hi);
      const __m512 oc = _mm512_permutex2var_ps(lo, off, hi);
      // along the rows (periodic within each row): row y with k, row y + 1 with 1 - k
      //   k = 0: lanes 0..7  +1 = oc[m], -1 = oc[m - 1] (lane 0: row[15]);
      //          lanes 8..15 -1 = oc[m], +1 = oc[m + 1] (lane 15: row2[0])
      //   k = 1: the roles of the halves swapped (lane 7: row[0], lane 8: row2[15])
      const __m512i down1 = _mm512_sub_epi32(lanes, _mm512_set1_epi32(1));  // lane i <- i - 1
      const __m512i up1i = _mm512_add_epi32(lanes, _mm512_set1_epi32(1));   // lane i <- i + 1
      const __m512 ocm = _mm512_permutexvar_ps(down1, oc);  // oc[i - 1] (lane 0 garbage)
      const __m512 ocp = _mm512_permutexvar_ps(up1i, oc);   // oc[i + 1] (lane 15 garbage)
      __m512 rp, rm;
      if (k == 0) {
        rp = _mm512_mask_blend_ps(h0, ocp, oc);                        // lo: oc[m], hi: oc[m + 1]
        rm = _mm512_mask_blend_ps(h0, oc, ocm);                        // lo: oc[m - 1], hi: oc[m]
        rm = _mm512_mask_mov_ps(rm, 0x0001, _mm512_set1_ps(row[15]));  // row[-1] -> row[15]
        rp = _mm512_mask_mov_ps(rp, 0x8000, _mm512_set1_ps(row2[0]));  // row2[16] -> row2[0]
      } else {
        rm = _mm512_mask_blend_ps(h0, ocm, oc);                        // lo: oc[m], hi: oc[m - 1]
        rp = _mm512_mask_blend_ps(h0, oc, ocp);                        // lo: oc[m + 1], hi: oc[m]
        rp = _mm512_mask_mov_ps(rp, 0x0080, _mm512_set1_ps(row[0]));   // row[16] -> row[0]
        rm = _mm512_mask_mov_ps(rm, 0x0100, _mm512_set1_ps(row2[15])); // row2[-1] -> row2[15]
      }
      w.nb[0] = pick(up, up + Lr, on);
      w.nb[1] = pick(dn, dn + Lr, on);
      w.nb[2] = pick(plane + (y + 1) * Lr, plane + (y + 2 == rpp ? 0 : y + 2) * Lr, on);
      w.nb[3] = pick(dn1, row, on);
      w.nb[4] = rp;
      w.nb[5] = rm;
      w.off = on;
      w.flat = b * N + r * Lr;
      w.id = (uint64_t)(a.id0 + r * Lr);
      if (EA) w.J = Jc + r * M;
      const __m512 snew = update16<D, EA, RULE>(a, w, half, fac, c1, c2, cm);
      _mm512_storeu_ps(row, _mm512_mask_permutexvar_ps(lo, keep_lo, dup_lo, snew));
      _mm512_storeu_ps(row2, _mm512_mask_permutexvar_ps(hi, keep_hi, dup_hi, snew));
      y += 2;
      if (y == rpp) { y = 0; ++x; }
    }
  }
}
#endif

// Colour c on rows [r0, r1) of chains [b0, b1), in blocks of at most w.rpb rows.
template <int D, bool EA, int RULE>
static void rows(const Args& a, Work& w, int64_t b0, int64_t b1, int64_t r0, int64_t r1, int c) {
#if defined(__AVX512F__)
  const int64_t Lr = D == 1 ? a.n0 : (D == 2 ? a.n1 : a.n2);
  if (Lr % 32 == 0 || (D == 3 && Lr == 16)) {  // (w.rpb and the row ranges are even)
    for (int64_t s0 = r0; s0 < r1; s0 += w.rpb)
      for (int64_t b = b0; b < b1; ++b) block512<D, EA, RULE>(a, b, s0, std::min(r1, s0 + w.rpb), c);
    return;
  }
#endif
  for (int64_t s0 = r0; s0 < r1; s0 += w.rpb)
    for (int64_t b = b0; b < b1; ++b) block<D, EA, RULE>(a, w, b, s0, std::min(r1, s0 + w.rpb), c);
}

// mode 0 / 1: that colour on every row (halo mode). mode 2: a whole single-domain sweep as a
// wavefront: colour 0 advances block by block; colour 1 follows on every row whose plane and
// both neighbouring planes of axis 0 are done (a colour-1 site needs the new colour-0 values
// of planes x-1, x, x+1, and colour 0 on plane x+1 needs the old colour-1 values of plane x).
// Plane 0 wraps (it needs plane P-1) and goes last.
template <int D, bool EA, int RULE>
static void run(const Args& a, int64_t b0, int64_t b1, int mode) {
  const int64_t Lr = D == 1 ? a.n0 : (D == 2 ? a.n1 : a.n2);
  const int64_t M = Lr / 2;
  const int64_t rpp = D == 3 ? a.n1 : 1;
  const int64_t R = a.N / Lr;  // rows of the slab
  int64_t rpb = std::max<int64_t>(1, std::min<int64_t>(R, 512 / M));
  if (D == 3) rpb = std::max<int64_t>(2, rpb & ~int64_t(1));  // even: 3D rows of 16 go in pairs
  Work w(rpb, M, 2 * D);
  const int64_t P = D == 1 ? 1 : a.n0;
  if (mode < 2 || P < 3) {
    for (int c = mode == 1 ? 1 : 0; c <= (mode == 0 ? 0 : 1); ++c) rows<D, EA, RULE>(a, w, b0, b1, 0, R, c);
    return;
  }
  int64_t done1 = rpp;  // colour 1 starts at plane 1
  for (int64_t done0 = 0; done0 < R;) {
    const int64_t next = std::min(R, done0 + w.rpb);
    rows<D, EA, RULE>(a, w, b0, b1, done0, next, 0);
    done0 = next;
    const int64_t ready = done0 == R ? R : std::max(done1, (done0 / rpp - 1) * rpp);
    rows<D, EA, RULE>(a, w, b0, b1, done1, ready, 1);
    done1 = ready;
  }
  rows<D, EA, RULE>(a, w, b0, b1, 0, rpp, 1);
}

template <int D>
static void run_d(const Args& a, int64_t b0, int64_t b1, int mode) {
  if (a.ea) {
    if (a.rule == 0) run<D, true, 0>(a, b0, b1, mode); else run<D, true, 1>(a, b0, b1, mode);
  } else {
    if (a.rule == 0) run<D, false, 0>(a, b0, b1, mode); else run<D, false, 1>(a, b0, b1, mode);
  }
}

extern "C" {

int64_t hpc_rg_vector_width() { return VW; }

// Update chains [b0, b1): mode 0 = colour 0, 1 = colour 1 (ghost planes from the halo
// exchange), 2 = full single-domain sweep (glo/ghi must point at the slab's own last/first
// plane, the periodic neighbours). Returns 0, or -1 for an unsupported dimension.
int64_t hpc_rg_checkerboard(const Args* a, int64_t b0, int64_t b1, int64_t mode) {
  switch (a->d) {
    case 1: run_d<1>(*a, b0, b1, (int)mode); return 0;
    case 2: run_d<2>(*a, b0, b1, (int)mode); return 0;
    case 3: run_d<3>(*a, b0, b1, (int)mode); return 0;
  }
  return -1;
}

// x <- exp2(x) (rule 0) or sigmoid(x) (rule 1) of a flat float32 array the way ATen evaluates
// it (vector code, scalar libm on the given ranges): lets the tests check the emulation.
void hpc_rg_aten_like(float* x, int64_t n, int64_t rule, int64_t nscalar, const int64_t* scalar) {
  std::vector<float> t(x, x + n);
  t.resize((n + VW - 1) / VW * VW, 0.f);
  if (rule == 0) vec_exp2(t.data(), n); else vec_sigmoid(t.data(), n);
  for (int64_t q = 0; q < nscalar; ++q)
    for (int64_t i = scalar[2 * q]; i < scalar[2 * q + 1]; ++i)
      t[i] = rule == 0 ? scalar_exp2(x[i]) : scalar_sigmoid(x[i]);
  std::copy(t.begin(), t.begin() + n, x);
}

}  // extern "C"
