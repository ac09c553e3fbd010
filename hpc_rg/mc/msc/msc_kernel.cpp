// Multi-spin-coded +-J checkerboard update: the compiled CPU path of hpc_rg.mc.msc.
// Same layout, random words and decision as hpc_rg/mc/msc/sweep_torch.py (bit-identical).
// Words are processed VW at a time (AVX-512: 8, AVX2: 4, else 1): the kernel copies the
// (W, sites) spins into a (sites, W') buffer (W' = W rounded up to VW), updates it, and
// copies the result back. One thread.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
typedef __m512i vec;
static const int VW = 8;
static inline vec vload(const uint64_t* p) { return _mm512_loadu_si512((const void*)p); }
static inline void vstore(uint64_t* p, vec a) { _mm512_storeu_si512((void*)p, a); }
static inline vec vset(uint64_t x) { return _mm512_set1_epi64((long long)x); }
static inline vec vxor(vec a, vec b) { return _mm512_xor_si512(a, b); }
static inline vec vand(vec a, vec b) { return _mm512_and_si512(a, b); }
static inline vec vor(vec a, vec b) { return _mm512_or_si512(a, b); }
static inline vec vandn(vec a, vec b) { return _mm512_andnot_si512(a, b); }  // ~a & b
static inline vec vadd(vec a, vec b) { return _mm512_add_epi64(a, b); }
template <int k> static inline vec vsrl(vec a) { return _mm512_srli_epi64(a, k); }
static inline vec vmulc(vec a, uint64_t c) { return _mm512_mullo_epi64(a, vset(c)); }
static inline bool vzero(vec a) { return _mm512_test_epi64_mask(a, a) == 0; }
#elif defined(__AVX2__)
#include <immintrin.h>
typedef __m256i vec;
static const int VW = 4;
static inline vec vload(const uint64_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
static inline void vstore(uint64_t* p, vec a) { _mm256_storeu_si256((__m256i*)p, a); }
static inline vec vset(uint64_t x) { return _mm256_set1_epi64x((long long)x); }
static inline vec vxor(vec a, vec b) { return _mm256_xor_si256(a, b); }
static inline vec vand(vec a, vec b) { return _mm256_and_si256(a, b); }
static inline vec vor(vec a, vec b) { return _mm256_or_si256(a, b); }
static inline vec vandn(vec a, vec b) { return _mm256_andnot_si256(a, b); }
static inline vec vadd(vec a, vec b) { return _mm256_add_epi64(a, b); }
template <int k> static inline vec vsrl(vec a) { return _mm256_srli_epi64(a, k); }
static inline vec vmulc(vec a, uint64_t c) {  // 64 x 64 -> low 64 bits from 32-bit products
    vec lo = _mm256_mul_epu32(a, vset(c));
    vec t1 = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), vset(c));
    vec t2 = _mm256_mul_epu32(a, vset(c >> 32));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(_mm256_add_epi64(t1, t2), 32));
}
static inline bool vzero(vec a) { return _mm256_testz_si256(a, a); }
#else
typedef uint64_t vec;
static const int VW = 1;
static inline vec vload(const uint64_t* p) { return *p; }
static inline void vstore(uint64_t* p, vec a) { *p = a; }
static inline vec vset(uint64_t x) { return x; }
static inline vec vxor(vec a, vec b) { return a ^ b; }
static inline vec vand(vec a, vec b) { return a & b; }
static inline vec vor(vec a, vec b) { return a | b; }
static inline vec vandn(vec a, vec b) { return ~a & b; }
static inline vec vadd(vec a, vec b) { return a + b; }
template <int k> static inline vec vsrl(vec a) { return a >> k; }
static inline vec vmulc(vec a, uint64_t c) { return a * c; }
static inline bool vzero(vec a) { return a == 0; }
#endif

static const uint64_t G = 0x9E3779B97F4A7C15ULL, C1 = 0xBF58476D1CE4E5B9ULL,
                      C2 = 0x94D049BB133111EBULL, S_SITE = 0xA4093822299F31D0ULL,
                      S_CTR = 0x082EFA98EC4E6C89ULL;

static inline uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * C1;
    z = (z ^ (z >> 27)) * C2;
    return z ^ (z >> 31);
}
static inline vec vmix(vec z) {
    z = vmulc(vxor(z, vsrl<30>(z)), C1);
    z = vmulc(vxor(z, vsrl<27>(z)), C2);
    return vxor(z, vsrl<31>(z));
}
static inline void full_add(vec a, vec b, vec c, vec& s, vec& k) {
    vec t = vxor(a, b);
    s = vxor(t, c);
    k = vor(vand(a, b), vand(t, c));
}

struct Args {           // mirror of hpc_rg.mc.msc.compiled._Args
    int64_t d, W, n0, n1, n2;   // interior shape, padded with 1 to three axes
    int64_t ghost;              // 1: s and J carry ghost planes 0 and n0 + 1 along axis 0
    int64_t par0;               // parity of the global coordinates of the first interior site
    int64_t colours;            // 0 or 1: that colour; 2: colour 0 then 1
    const int64_t* site_ids;    // (n0 n1 n2) global ids of the interior sites
    int64_t* s;                 // (W, n0e n1 n2) spin words, updated in place (interior only)
    const int64_t* J;           // (W, d, n0e n1 n2) coupling planes, or null (ferromagnet)
    int64_t J_inner;            // 1: J is already word-inner, (n0e n1 n2, d, W') with W' = W rounded up to VW
    const int64_t* thr;         // (W, 2d + 1, 33) thresholds
    const int64_t* wkey;        // (W) word keys
    const int64_t* active;      // classes whose digits are needed
    int64_t nactive;
    int64_t counter0;           // random counter of colour 0 of the first sweep (2 * sweep)
    int64_t nsweeps;            // sweeps in this call (colours == 2), else 1
    int64_t* unsat;             // (W, 64): unsatisfied bonds per lane after the call, or null (no ghosts)
    int64_t s_inner;            // 1: s is already word-inner, (n0 n1 n2, W'), updated in place (no ghosts)
};

static const int FIRST_DIGITS = 8;  // (32 - FIRST_DIGITS) % 4 == 0

struct Ctx {  // everything the update loop reads, in locals the compiler can keep in registers
    int64_t n0, n1, n2, n0e, ghost, par0, Wv, nv, nact;
    int act[2 * 3 + 1];
    const int64_t* site_ids;
    uint64_t* S;
    const uint64_t* J;
    const uint64_t* T;
    const uint64_t* K;
};

// U vectors of words at one site (U independent dependency chains for the pipeline).
template <int D, int U>
static inline void words(const Ctx& c, int64_t x, const int64_t* y, const int64_t* b, vec sk, int64_t o0) {
    const int Z = 2 * D;
    const int64_t Wv = c.Wv;
    uint64_t* __restrict S = c.S;
    const uint64_t* __restrict Jb = c.J;
    const uint64_t* __restrict T = c.T;
    const vec ones = vset(~0ULL);
    vec sx[U], flip[U], und[U], key[U], m[U][2 * 3 + 1];
    for (int u = 0; u < U; ++u) {
        const int64_t o = o0 + u * VW;
        sx[u] = vload(S + x * Wv + o);
        vec sat[2 * 3];
        for (int k = 0; k < Z; ++k) {
            vec t = vxor(sx[u], vload(S + y[k] * Wv + o));
            if (Jb) t = vxor(t, vload(Jb + b[k] * Wv + o));
            sat[k] = vxor(t, ones);  // satisfied bonds
        }
        vec c0, c1, c2;
        if (D == 1) {
            c0 = vxor(sat[0], sat[1]); c1 = vand(sat[0], sat[1]); c2 = vset(0);
        } else if (D == 2) {
            vec s1, k1;
            full_add(sat[0], sat[1], sat[2], s1, k1);
            c0 = vxor(s1, sat[3]);
            const vec k2 = vand(s1, sat[3]);
            c1 = vxor(k1, k2); c2 = vand(k1, k2);
        } else {
            vec s1, k1, s2, k2;
            full_add(sat[0], sat[1], sat[2], s1, k1);
            full_add(sat[3], sat[4], sat[5], s2, k2);
            c0 = vxor(s1, s2);
            full_add(k1, k2, vand(s1, s2), c1, c2);
        }
        const vec cb[3] = {c0, c1, c2};
        const vec nc[3] = {vxor(c0, ones), vxor(c1, ones), vxor(c2, ones)};
        flip[u] = vset(0);
        for (int n = 0; n <= Z; ++n) {
            m[u][n] = vand(vand((n & 1) ? cb[0] : nc[0], (n & 2) ? cb[1] : nc[1]), (n & 4) ? cb[2] : nc[2]);
            flip[u] = vor(flip[u], vand(m[u][n], vload(T + (n * 33) * Wv + o)));
        }
        und[u] = vxor(flip[u], ones);
        key[u] = vmix(vxor(vload(c.K + o), sk));
    }
    // Digits in blocks without a test in between: R_j depends on the key only, so digits and
    // vectors overlap in the pipeline; digits after the last undecided lane change nothing.
    auto digit = [&](int j) {
        for (int u = 0; u < U; ++u) {
            const int64_t o = o0 + u * VW;
            const vec R = vmix(vadd(key[u], vset((uint64_t)j * G)));
            vec P = vset(0);
            for (int q = 0; q < c.nact; ++q) {
                const int n = c.act[q];
                P = vor(P, vand(m[u][n], vload(T + (n * 33 + j) * Wv + o)));
            }
            flip[u] = vor(flip[u], vandn(R, vand(und[u], P)));
            und[u] = vandn(vxor(R, P), und[u]);
        }
    };
    auto pending = [&]() {
        vec any = und[0];
        for (int u = 1; u < U; ++u) any = vor(any, und[u]);
        return !vzero(any);
    };
    if (pending()) {
        for (int j = 1; j <= FIRST_DIGITS; ++j) digit(j);
        for (int j = FIRST_DIGITS + 1; j <= 32 && pending(); j += 4) {
            digit(j); digit(j + 1); digit(j + 2); digit(j + 3);
        }
    }
    for (int u = 0; u < U; ++u) vstore(S + x * Wv + o0 + u * VW, vxor(sx[u], flip[u]));
}

template <int D>
static inline void site(const Ctx& c, uint64_t ck, int64_t i0, int64_t i1, int64_t i2) {
    const int64_t n1 = c.n1, n2 = c.n2;
    const int64_t e0 = i0 + c.ghost;
    const int64_t up0 = (c.ghost || e0 + 1 < c.n0e) ? e0 + 1 : 0;
    const int64_t dn0 = (c.ghost || e0 > 0) ? e0 - 1 : c.n0e - 1;
    const int64_t x = (e0 * n1 + i1) * n2 + i2;
    int64_t y[2 * 3], b[2 * 3];
    y[0] = (up0 * n1 + i1) * n2 + i2;  b[0] = x * D + 0;
    y[1] = (dn0 * n1 + i1) * n2 + i2;  b[1] = y[1] * D + 0;
    if (D >= 2) {
        const int64_t u = i1 + 1 < n1 ? i1 + 1 : 0, w = i1 > 0 ? i1 - 1 : n1 - 1;
        y[2] = (e0 * n1 + u) * n2 + i2;  b[2] = x * D + 1;
        y[3] = (e0 * n1 + w) * n2 + i2;  b[3] = y[3] * D + 1;
    }
    if (D >= 3) {
        const int64_t u = i2 + 1 < n2 ? i2 + 1 : 0, w = i2 > 0 ? i2 - 1 : n2 - 1;
        y[4] = (e0 * n1 + i1) * n2 + u;  b[4] = x * D + 2;
        y[5] = (e0 * n1 + i1) * n2 + w;  b[5] = y[5] * D + 2;
    }
    const uint64_t sid = (uint64_t)c.site_ids[(i0 * n1 + i1) * n2 + i2];
    const vec sk = vset(mix(mix(sid * G + S_SITE) ^ ck));
    int64_t v = 0;
    for (; v + 2 <= c.nv; v += 2) words<D, 2>(c, x, y, b, sk, v * VW);
    for (; v < c.nv; ++v) words<D, 1>(c, x, y, b, sk, v * VW);
}

template <int D>
static void update(const Ctx& c, uint64_t ck, int colour) {
    const int64_t p = (colour + c.par0) & 1;
    if (D == 1) {
        for (int64_t i0 = p; i0 < c.n0; i0 += 2) site<1>(c, ck, i0, 0, 0);
    } else if (D == 2) {
        for (int64_t i0 = 0; i0 < c.n0; ++i0)
            for (int64_t i1 = (p + i0) & 1; i1 < c.n1; i1 += 2) site<2>(c, ck, i0, i1, 0);
    } else {
        for (int64_t i0 = 0; i0 < c.n0; ++i0)
            for (int64_t i1 = 0; i1 < c.n1; ++i1)
                for (int64_t i2 = (p + i0 + i1) & 1; i2 < c.n2; i2 += 2) site<3>(c, ck, i0, i1, i2);
    }
}

// Unsatisfied bonds per lane of the word-inner spins after an update (periodic lattice, no
// ghosts): Harley-Seal carry-save adders on vectors of words, the weight-8 carries rippling
// into a bit-sliced counter; the numbers of msc_unsatisfied below.
static inline void vcsa(vec& h, vec& l, vec a, vec b, vec c) {
    const vec u = vxor(a, b);
    h = vor(vand(a, b), vand(u, c));
    l = vxor(u, c);
}

static void unsat_counts(const Ctx& c, int64_t d, int64_t W, int64_t* out) {
    // sites outer, vectors of words inner: every site reads contiguous rows of the word-inner
    // arrays; one carry-save state per vector (the add sequence, hence nb, is shared)
    const int64_t n0 = c.n0, n1 = c.n1, n2 = c.n2, Wv = c.Wv, nv = c.nv;
    const int HI = 40;
    std::vector<vec> ones(nv, vset(0)), twos(nv, vset(0)), fours(nv, vset(0));
    std::vector<vec> hi(nv * HI, vset(0)), buf(nv * 8);
    int nb = 0, top = 0;
    for (int64_t i0 = 0; i0 < n0; ++i0)
        for (int64_t i1 = 0; i1 < n1; ++i1)
            for (int64_t i2 = 0; i2 < n2; ++i2) {
                const int64_t x = (i0 * n1 + i1) * n2 + i2;
                int64_t y[3];
                y[0] = ((i0 + 1 < n0 ? i0 + 1 : 0) * n1 + i1) * n2 + i2;
                y[1] = (i0 * n1 + (i1 + 1 < n1 ? i1 + 1 : 0)) * n2 + i2;
                y[2] = (i0 * n1 + i1) * n2 + (i2 + 1 < n2 ? i2 + 1 : 0);
                for (int64_t mu = 0; mu < d; ++mu) {
                    const uint64_t* sx = c.S + x * Wv;
                    const uint64_t* sy = c.S + y[mu] * Wv;
                    const uint64_t* jx = c.J ? c.J + (x * d + mu) * Wv : nullptr;
                    for (int64_t v = 0; v < nv; ++v) {
                        vec u = vxor(vload(sx + v * VW), vload(sy + v * VW));
                        if (jx) u = vxor(u, vload(jx + v * VW));
                        buf[v * 8 + nb] = u;
                    }
                    if (++nb < 8) continue;
                    nb = 0;
                    for (int64_t v = 0; v < nv; ++v) {
                        vec* b = &buf[v * 8];
                        vec tA, tB, fA, fB, e;
                        vcsa(tA, ones[v], ones[v], b[0], b[1]);
                        vcsa(tB, ones[v], ones[v], b[2], b[3]);
                        vcsa(fA, twos[v], twos[v], tA, tB);
                        vcsa(tA, ones[v], ones[v], b[4], b[5]);
                        vcsa(tB, ones[v], ones[v], b[6], b[7]);
                        vcsa(fB, twos[v], twos[v], tA, tB);
                        vcsa(e, fours[v], fours[v], fA, fB);
                        vec* h = &hi[v * HI];
                        for (int i = 0; i < HI && !vzero(e); ++i) {
                            const vec t = vand(h[i], e);
                            h[i] = vxor(h[i], e);
                            e = t;
                            if (i + 1 > top) top = i + 1;
                        }
                    }
                }
            }
    for (int64_t v = 0; v < nv; ++v) {
        alignas(64) uint64_t w1[VW], w2[VW], w4[VW], wh[HI][VW], wb[8][VW];
        vstore(w1, ones[v]); vstore(w2, twos[v]); vstore(w4, fours[v]);
        for (int i = 0; i < top; ++i) vstore(wh[i], hi[v * HI + i]);
        for (int i = 0; i < nb; ++i) vstore(wb[i], buf[v * 8 + i]);
        const int64_t o = v * VW;
        for (int k = 0; k < VW && o + k < W; ++k)
            for (int b = 0; b < 64; ++b) {
                int64_t n = (int64_t)((w1[k] >> b) & 1) + 2 * (int64_t)((w2[k] >> b) & 1) + 4 * (int64_t)((w4[k] >> b) & 1);
                for (int i = 0; i < top; ++i) n += (int64_t)((wh[i][k] >> b) & 1) << (i + 3);
                for (int i = 0; i < nb; ++i) n += (int64_t)((wb[i][k] >> b) & 1);
                out[(o + k) * 64 + b] = n;
            }
    }
}

extern "C" {

int64_t msc_vector_words() { return VW; }

int64_t msc_update(const Args* ap) {
    const Args& a = *ap;
    if (a.d < 1 || a.d > 3 || a.W < 1 || a.nactive > 2 * a.d + 1) return 1;
    const int64_t W = a.W, Wv = (W + VW - 1) / VW * VW, d = a.d, Z = 2 * d, NT = (Z + 1) * 33;
    const int64_t Ne = (a.n0 + 2 * a.ghost) * a.n1 * a.n2;
    if (a.s_inner && a.ghost) return 3;
    std::vector<uint64_t> S(a.s_inner ? 0 : Ne * Wv, 0), T(NT * Wv, 0), K(Wv, 0), Jb;
    const int64_t TILE = 64;  // transpose in tiles of sites: contiguous reads, writes stay in L1
    const uint64_t* s = (const uint64_t*)a.s;
    for (int64_t i0 = 0; !a.s_inner && i0 < Ne; i0 += TILE) {
        const int64_t i1 = i0 + TILE < Ne ? i0 + TILE : Ne;
        for (int64_t w = 0; w < W; ++w)
            for (int64_t i = i0; i < i1; ++i) S[i * Wv + w] = s[w * Ne + i];
    }
    for (int64_t w = 0; w < W; ++w) {
        K[w] = (uint64_t)a.wkey[w];
        for (int64_t i = 0; i < NT; ++i) T[i * Wv + w] = (uint64_t)a.thr[w * NT + i];
    }
    for (int64_t w = W; w < Wv; ++w)  // padding words: every lane "always flips", no random digits
        for (int64_t n = 0; n <= Z; ++n) T[(n * 33) * Wv + w] = ~0ULL;
    if (a.J && !a.J_inner) {
        Jb.assign(Ne * d * Wv, 0);
        const uint64_t* J = (const uint64_t*)a.J;
        for (int64_t i0 = 0; i0 < Ne; i0 += TILE) {
            const int64_t i1 = i0 + TILE < Ne ? i0 + TILE : Ne;
            for (int64_t w = 0; w < W; ++w)
                for (int64_t mu = 0; mu < d; ++mu)
                    for (int64_t i = i0; i < i1; ++i) Jb[(i * d + mu) * Wv + w] = J[(w * d + mu) * Ne + i];
        }
    }
    Ctx c;
    c.n0 = a.n0; c.n1 = a.n1; c.n2 = a.n2; c.ghost = a.ghost; c.n0e = a.n0 + 2 * a.ghost;
    c.par0 = a.par0; c.Wv = Wv; c.nv = Wv / VW; c.nact = a.nactive;
    for (int64_t q = 0; q < a.nactive; ++q) c.act[q] = (int)a.active[q];
    c.site_ids = a.site_ids; c.S = a.s_inner ? (uint64_t*)a.s : S.data(); c.J = !a.J ? nullptr : a.J_inner ? (const uint64_t*)a.J : Jb.data(); c.T = T.data(); c.K = K.data();
    const int64_t nsweeps = a.colours == 2 ? a.nsweeps : 1;
    for (int64_t sw = 0; sw < nsweeps; ++sw)
        for (int colour = 0; colour < 2; ++colour) {
            if (a.colours != 2 && a.colours != colour) continue;
            const uint64_t cnt = (uint64_t)a.counter0 + 2 * (uint64_t)sw + (uint64_t)colour;
            const uint64_t ck = mix(((cnt + 1) * G) ^ S_CTR);  // rng.counter_key
            if (d == 1) update<1>(c, ck, colour);
            else if (d == 2) update<2>(c, ck, colour);
            else update<3>(c, ck, colour);
        }
    if (a.unsat) {
        if (a.ghost) return 2;
        unsat_counts(c, d, W, a.unsat);
    }
    if (a.s_inner) return 0;
    const int64_t lo = a.ghost * a.n1 * a.n2, hi = Ne - lo;  // interior sites only
    uint64_t* out = (uint64_t*)a.s;
    for (int64_t i0 = lo; i0 < hi; i0 += TILE) {
        const int64_t i1 = i0 + TILE < hi ? i0 + TILE : hi;
        for (int64_t w = 0; w < W; ++w)
            for (int64_t i = i0; i < i1; ++i) out[w * Ne + i] = S[i * Wv + w];
    }
    return 0;
}

// ---------------------------------------------------------------------------- chain bits
// Per-lane bit strings for measurements: lane b of word w becomes row 64 w + b of
// out (64 W, P, M), M = ceil(N / 64), bit i of out[., p, m] = site 64 m + i (zero beyond N),
// plane p = 0: the spin bits, p = 1 + mu: the bond bits s_x ^ s_{x + e_mu} (periodic along
// axes 1, 2; along axis 0 the last plane pairs with `above` when given, else with plane 0).

static inline void transpose64(uint64_t a[64]) {  // a[i] bit j -> a[j] bit i
    uint64_t m = 0x00000000FFFFFFFFULL;
    for (int j = 32; j != 0; j >>= 1, m ^= (m << j))
        for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            const uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
            a[k] ^= t << j;
            a[k | j] ^= t;
        }
}

struct BitsArgs {       // mirror of hpc_rg.mc.msc.compiled._BitsArgs
    int64_t d, W, n0, n1, n2;
    const int64_t* s;       // (W, n0 n1 n2) spin words
    const int64_t* above;   // (W, n1 n2) the plane after the last along axis 0, or null
    int64_t bonds;          // 1: planes 1..d too
    int64_t* out;           // (64 W, 1 + d bonds, M)
};

int64_t msc_chain_bits(const BitsArgs* ap) {
    const BitsArgs& a = *ap;
    if (a.d < 1 || a.d > 3 || a.W < 0) return 1;
    const int64_t n0 = a.n0, n1 = a.n1, n2 = a.n2, N = n0 * n1 * n2, M = (N + 63) / 64;
    const int64_t P = 1 + (a.bonds ? a.d : 0), plane = n1 * n2;
    uint64_t blk[64];
    for (int64_t w = 0; w < a.W; ++w) {
        const uint64_t* s = (const uint64_t*)a.s + w * N;
        const uint64_t* up = a.above ? (const uint64_t*)a.above + w * plane : s;
        uint64_t* out = (uint64_t*)a.out + (64 * w) * P * M;
        for (int64_t p = 0; p < P; ++p)
            for (int64_t m = 0; m < M; ++m) {
                for (int64_t i = 0; i < 64; ++i) {
                    const int64_t x = 64 * m + i;
                    if (x >= N) { blk[i] = 0; continue; }
                    if (p == 0) { blk[i] = s[x]; continue; }
                    const int64_t i0 = x / plane, r = x % plane, i1 = r / n2, i2 = r % n2;
                    uint64_t y;
                    if (p == 1) y = i0 + 1 < n0 ? s[x + plane] : up[r];
                    else if (p == 2) y = s[i0 * plane + (i1 + 1 < n1 ? i1 + 1 : 0) * n2 + i2];
                    else y = s[i0 * plane + i1 * n2 + (i2 + 1 < n2 ? i2 + 1 : 0)];
                    blk[i] = s[x] ^ y;
                }
                transpose64(blk);
                for (int64_t b = 0; b < 64; ++b) out[(b * P + p) * M + m] = blk[b];
            }
    }
    return 0;
}

// ---------------------------------------------------------------------------- bond counts
// Unsatisfied bonds per lane, out (W, 64): count over the sites x of the slab and mu of
// s_x ^ s_{x + e_mu} ^ J_mu(x) (neighbours as in msc_chain_bits). Harley-Seal carry-save
// adders over the stream of bond words, the weight-8 carries into a rippling bit-sliced counter.

static inline void csa(uint64_t& h, uint64_t& l, uint64_t a, uint64_t b, uint64_t c) {
    const uint64_t u = a ^ b;
    h = (a & b) | (u & c);
    l = u ^ c;
}

struct Counter {  // per-lane count = ones + 2 twos + 4 fours + 8 sum_i hi[i] 2^i (+ tail)
    uint64_t ones = 0, twos = 0, fours = 0, hi[40] = {0}, tail[8] = {0}, buf[8];
    int n = 0;
    static inline void ripple(uint64_t* p, int k, uint64_t c) {
        for (int i = 0; c && i < k; ++i) { const uint64_t t = p[i] & c; p[i] ^= c; c = t; }
    }
    inline void add(uint64_t x) {
        buf[n++] = x;
        if (n < 8) return;
        n = 0;
        uint64_t tA, tB, fA, fB, e;
        csa(tA, ones, ones, buf[0], buf[1]);
        csa(tB, ones, ones, buf[2], buf[3]);
        csa(fA, twos, twos, tA, tB);
        csa(tA, ones, ones, buf[4], buf[5]);
        csa(tB, ones, ones, buf[6], buf[7]);
        csa(fB, twos, twos, tA, tB);
        csa(e, fours, fours, fA, fB);
        ripple(hi, 40, e);
    }
    void counts(int64_t* out) {
        for (int i = 0; i < n; ++i) ripple(tail, 8, buf[i]);
        for (int b = 0; b < 64; ++b) {
            int64_t c = (int64_t)((ones >> b) & 1) + 2 * (int64_t)((twos >> b) & 1) + 4 * (int64_t)((fours >> b) & 1);
            for (int i = 0; i < 40; ++i) c += (int64_t)((hi[i] >> b) & 1) << (i + 3);
            for (int i = 0; i < 8; ++i) c += (int64_t)((tail[i] >> b) & 1) << i;
            out[b] = c;
        }
    }
};

struct CountArgs {      // mirror of hpc_rg.mc.msc.compiled._CountArgs
    int64_t d, W, n0, n1, n2;
    const int64_t* s;       // (W, n0 n1 n2) spin words
    const int64_t* J;       // (W, d, n0 n1 n2) coupling planes, or null
    const int64_t* above;   // (W, n1 n2) the plane after the last along axis 0, or null
    int64_t* out;           // (W, 64)
};

int64_t msc_unsatisfied(const CountArgs* ap) {
    const CountArgs& a = *ap;
    if (a.d < 1 || a.d > 3 || a.W < 0) return 1;
    const int64_t n0 = a.n0, n1 = a.n1, n2 = a.n2, N = n0 * n1 * n2, plane = n1 * n2, d = a.d;
    for (int64_t w = 0; w < a.W; ++w) {
        const uint64_t* s = (const uint64_t*)a.s + w * N;
        const uint64_t* J = a.J ? (const uint64_t*)a.J + w * d * N : nullptr;
        const uint64_t* up = a.above ? (const uint64_t*)a.above + w * plane : s;
        Counter c;
        for (int64_t i0 = 0; i0 < n0; ++i0)
            for (int64_t i1 = 0; i1 < n1; ++i1)
                for (int64_t i2 = 0; i2 < n2; ++i2) {
                    const int64_t x = (i0 * n1 + i1) * n2 + i2, r = i1 * n2 + i2;
                    const uint64_t sx = s[x];
                    uint64_t u = sx ^ (i0 + 1 < n0 ? s[x + plane] : up[r]);
                    c.add(J ? u ^ J[x] : u);
                    if (d >= 2) {
                        u = sx ^ s[i0 * plane + (i1 + 1 < n1 ? i1 + 1 : 0) * n2 + i2];
                        c.add(J ? u ^ J[N + x] : u);
                    }
                    if (d >= 3) {
                        u = sx ^ s[i0 * plane + i1 * n2 + (i2 + 1 < n2 ? i2 + 1 : 0)];
                        c.add(J ? u ^ J[2 * N + x] : u);
                    }
                }
        c.counts(a.out + 64 * w);
    }
    return 0;
}

// ---------------------------------------------------------------------------- thresholds
// Threshold words of nw words from per-value bit patterns: out[w, k] has bit b set when
// pattern which[64 w + b] has bit k (pat (V, K) 0/1 bytes). Masks per value, then one AND-OR
// per (value present, k): the tempering update of every exchange.
int64_t msc_pack_thresholds(const uint8_t* pat, int64_t V, int64_t K, const int64_t* which,
                            int64_t nw, int64_t* out) {
    std::vector<uint64_t> mask(V);
    std::vector<int64_t> present;
    for (int64_t w = 0; w < nw; ++w) {
        std::fill(mask.begin(), mask.end(), 0);
        for (int b = 0; b < 64; ++b) {
            const int64_t v = which[64 * w + b];
            if (v < 0 || v >= V) return 1;
            mask[v] |= 1ULL << b;
        }
        present.clear();
        for (int64_t v = 0; v < V; ++v) if (mask[v]) present.push_back(v);
        uint64_t* o = (uint64_t*)out + w * K;
        for (int64_t k = 0; k < K; ++k) {
            uint64_t x = 0;
            for (int64_t v : present) x |= pat[v * K + k] ? mask[v] : 0;
            o[k] = x;
        }
    }
    return 0;
}

}  // extern "C"
