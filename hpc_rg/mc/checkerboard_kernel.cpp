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
// Work layout: spins are (B, n0, n1, n2) row-major ("rows" run along the last lattice
// axis). A colour pass visits only the sites of that colour: per row they are every second
// site, gathered into contiguous scratch arrays in blocks of rows, updated with contiguous
// (auto-vectorised) loops and scattered back. A single-domain sweep runs both colours as a
// wavefront over the planes of the first axis (colour 0 on plane p, then colour 1 on plane
// p - 1), so every plane is loaded from memory once per sweep.
#include <immintrin.h>
#include <sleef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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
  Work(int64_t rpb_, int64_t M, int64_t nnb)
      : rpb(rpb_), cap(rpb_ * M + VW), self(cap), nb(nnb * cap), f(cap), t(cap), u(cap), k1(cap), k2(cap) {}
};

// out[m] = src[2m + k], m < M
static inline void gather2(float* __restrict out, const float* __restrict src, int64_t M, int64_t k) {
  src += k;
  for (int64_t m = 0; m < M; ++m) out[m] = src[2 * m];
}

// Colour c on rows [r0, r1) of plane p (axis 0) of chain b; rows are counted within the plane.
template <int D, bool EA, int RULE>
static void block(const Args& a, Work& w, int64_t b, int64_t p, int64_t r0, int64_t r1, int c) {
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
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t x = D == 1 ? 0 : p, y = D == 3 ? r : 0;
    const int64_t k = (c + a.par0 + x + y) & 1;
    const int64_t row_off = (p * rpp + r) * Lr;
    const float* row = sb + row_off;
    const int64_t o = (r - r0) * M;
    gather2(self + o, row, M, k);
    int q = 0;
    if (D >= 2) {
      const float* up = x + 1 < a.n0 ? row + rpp * Lr : a.ghi + b * a.gstride + r * Lr;
      const float* dn = x > 0 ? row - rpp * Lr : a.glo + b * a.gstride + r * Lr;
      gather2(nb + (q++) * cap + o, up, M, k);
      gather2(nb + (q++) * cap + o, dn, M, k);
    }
    if (D == 3) {
      const float* plane = sb + p * rpp * Lr;
      gather2(nb + (q++) * cap + o, plane + ((r + 1) % rpp) * Lr, M, k);
      gather2(nb + (q++) * cap + o, plane + ((r + rpp - 1) % rpp) * Lr, M, k);
    }
    // along the row: +1 is src[2m + k + 1], -1 is src[2m + k - 1], periodic (ghosts in 1D)
    float* rp = nb + (q++) * cap + o;
    float* rm = nb + (q++) * cap + o;
    const float wrap_hi = D == 1 ? a.ghi[b * a.gstride] : row[0];
    const float wrap_lo = D == 1 ? a.glo[b * a.gstride] : row[Lr - 1];
    if (k == 0) {
      gather2(rp, row, M, 1);
      gather2(rm + 1, row, M - 1, 1);
      rm[0] = wrap_lo;
    } else {
      gather2(rp, row, M - 1, 2);
      rp[M - 1] = wrap_hi;
      gather2(rm, row, M, 0);
    }
    // CounterRNG keys from (chain part, global site id)
    const int64_t gid = a.id0 + row_off + k;
    const uint32_t c1 = (uint32_t)a.cpart[b], c2 = (uint32_t)a.cpart[a.B + b];
    uint32_t* __restrict k1 = w.k1.data() + o;
    uint32_t* __restrict k2 = w.k2.data() + o;
    for (int64_t m = 0; m < M; ++m) {
      const uint64_t id = (uint64_t)(gid + 2 * m);
      const uint32_t lo = (uint32_t)id, hi = (uint32_t)(id >> 32);
      k1[m] = mix32(mix32(c1 ^ lo) ^ hi);
      k2[m] = mix32(mix32(c2 ^ lo) ^ hi);
    }
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
    const float* Jc = a.Jp + ((a.jidx[b] * 2 + c) * NNB) * half + (p * rpp + r0) * M;
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
    const int64_t first = b * N + (p * rpp + r0) * Lr, last = b * N + (p * rpp + r1) * Lr;
    if (hi <= first || lo >= last) continue;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t x = D == 1 ? 0 : p, y = D == 3 ? r : 0;
      const int64_t k = (c + a.par0 + x + y) & 1;
      for (int64_t m = 0; m < M; ++m) {
        const int64_t flat = b * N + (p * rpp + r) * Lr + 2 * m + k;
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
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t x = D == 1 ? 0 : p, y = D == 3 ? r : 0;
    const int64_t k = (c + a.par0 + x + y) & 1;
    float* __restrict dst = sb + (p * rpp + r) * Lr + k;
    const float* __restrict src = self + (r - r0) * M;
    for (int64_t m = 0; m < M; ++m) dst[2 * m] = src[m];
  }
}

template <int D, bool EA, int RULE>
static void plane(const Args& a, Work& w, int64_t b, int64_t p, int c) {
  const int64_t rpp = D == 3 ? a.n1 : 1;
  for (int64_t r0 = 0; r0 < rpp; r0 += w.rpb) block<D, EA, RULE>(a, w, b, p, r0, std::min(rpp, r0 + w.rpb), c);
}

// mode 0 / 1: that colour on every plane (halo mode); mode 2: a whole single-domain sweep,
// colour 0 on plane p followed by colour 1 on plane p - 1 (valid: a colour-1 site needs the
// new colour-0 values of planes p - 2 .. p only; planes 0 and P - 1 wrap and go last).
template <int D, bool EA, int RULE>
static void run(const Args& a, int64_t b0, int64_t b1, int mode) {
  const int64_t Lr = D == 1 ? a.n0 : (D == 2 ? a.n1 : a.n2);
  const int64_t M = Lr / 2;
  const int64_t rpp = D == 3 ? a.n1 : 1;
  Work w(std::max<int64_t>(1, std::min<int64_t>(rpp, 512 / M)), M, 2 * D);
  const int64_t P = D == 1 ? 1 : a.n0;
  if (mode < 2 || P < 3) {
    for (int c = mode == 1 ? 1 : 0; c <= (mode == 0 ? 0 : 1); ++c)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t b = b0; b < b1; ++b) plane<D, EA, RULE>(a, w, b, p, c);
    return;
  }
  for (int64_t b = b0; b < b1; ++b) plane<D, EA, RULE>(a, w, b, 0, 0);
  for (int64_t p = 1; p < P; ++p)
    for (int64_t b = b0; b < b1; ++b) {
      plane<D, EA, RULE>(a, w, b, p, 0);
      if (p >= 2) plane<D, EA, RULE>(a, w, b, p - 1, 1);
    }
  for (int64_t b = b0; b < b1; ++b) {
    plane<D, EA, RULE>(a, w, b, P - 1, 1);
    plane<D, EA, RULE>(a, w, b, 0, 1);
  }
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

// Update chains [b0, b1): mode 0 = colour 0, 1 = colour 1, 2 = full sweep (no ghosts used
// except in 1D, where glo/ghi must point at the periodic neighbours). Returns 0, or -1 for
// an unsupported dimension.
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
