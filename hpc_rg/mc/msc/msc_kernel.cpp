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
    int64_t counter0;           // random counter of colour 0 of the first sweep (2 * sweep)
    int64_t nsweeps;            // sweeps in this call (colours == 2), else 1
    int64_t* unsat;             // (W, 64): unsatisfied bonds per lane after the call, or null (no ghosts)
    int64_t s_inner;            // 1: s is already word-inner, (n0 n1 n2, W'), updated in place (no ghosts)
};

static const int FIRST_DIGITS = 8;  // (32 - FIRST_DIGITS) % 4 == 0

// Per-lane counts of bit planes, one counter per vector of words (Harley-Seal): carry-save
// adders keep the weights 1, 2, 4 as planes; the weight-8 carries wait in groups of 8 for a
// second level of adders (weights 8, 16, 32), whose weight-64 carries ripple into a
// bit-sliced counter. The data-dependent ripple loop runs once per 8 additions.
static inline void vcsa(vec& h, vec& l, vec a, vec b, vec c) {
    const vec u = vxor(a, b);
    h = vor(vand(a, b), vand(u, c));
    l = vxor(u, c);
}

struct BitCounter {
    static const int HI = 40;
    struct Lanes {  // the counter of one vector of words
        vec ones, twos, fours, w8, w16, w32;
        vec buf8[8];  // weight-8 carries waiting for the second level
        vec hi[HI];   // weights 64, 128, ...
    };
    int64_t nv;
    int n8 = 0;   // weight-8 carries waiting in buf8 (the same number for every vector)
    int top = 0;  // weight-64 levels in use
    std::vector<Lanes> lanes;
    explicit BitCounter(int64_t nv_) : nv(nv_), lanes(nv_) {
        for (Lanes& l : lanes) {
            l.ones = l.twos = l.fours = l.w8 = l.w16 = l.w32 = vset(0);
            for (int i = 0; i < HI; ++i) l.hi[i] = vset(0);
        }
    }
    // after one weight-8 carry into buf8[n8] of every vector: every 8th time, the carries go
    // through their adders and the weight-64 carries ripple up (seldom enough that the
    // unpredictable loop costs little)
    inline void step() {
        if (++n8 < 8) return;
        n8 = 0;
        for (Lanes& l : lanes) {
            const vec* b = l.buf8;
            vec tA, tB, fA, fB, e;
            vcsa(tA, l.w8, l.w8, b[0], b[1]);
            vcsa(tB, l.w8, l.w8, b[2], b[3]);
            vcsa(fA, l.w16, l.w16, tA, tB);
            vcsa(tA, l.w8, l.w8, b[4], b[5]);
            vcsa(tB, l.w8, l.w8, b[6], b[7]);
            vcsa(fB, l.w16, l.w16, tA, tB);
            vcsa(e, l.w32, l.w32, fA, fB);
            for (int i = 0; i < HI && !vzero(e); ++i) {
                const vec t = vand(l.hi[i], e);
                l.hi[i] = vxor(l.hi[i], e);
                e = t;
                if (i + 1 > top) top = i + 1;
            }
        }
    }
    // out (W, 64): the count of every lane, plus nb pending planes buf[v * 8 + i] of weight 1
    void counts(int64_t W, const vec* buf, int nb, int64_t* out) const {
        for (int64_t v = 0; v < nv; ++v) {
            const Lanes& l = lanes[v];
            alignas(64) uint64_t w[6][VW], wh[HI][VW], wb[8][VW], w8b[8][VW];
            vstore(w[0], l.ones); vstore(w[1], l.twos); vstore(w[2], l.fours);
            vstore(w[3], l.w8); vstore(w[4], l.w16); vstore(w[5], l.w32);
            for (int i = 0; i < top; ++i) vstore(wh[i], l.hi[i]);
            for (int i = 0; i < nb; ++i) vstore(wb[i], buf[v * 8 + i]);
            for (int i = 0; i < n8; ++i) vstore(w8b[i], l.buf8[i]);
            const int64_t o = v * VW;
            for (int k = 0; k < VW && o + k < W; ++k)
                for (int b = 0; b < 64; ++b) {
                    int64_t n = 0;
                    for (int i = 0; i < 6; ++i) n += (int64_t)((w[i][k] >> b) & 1) << i;
                    for (int i = 0; i < top; ++i) n += (int64_t)((wh[i][k] >> b) & 1) << (i + 6);
                    for (int i = 0; i < n8; ++i) n += (int64_t)((w8b[i][k] >> b) & 1) << 3;
                    for (int i = 0; i < nb; ++i) n += (int64_t)((wb[i][k] >> b) & 1);
                    out[(o + k) * 64 + b] = n;
                }
        }
    }
};

// Add to a vector's counter l the unsatisfied bonds of a site after its update, from the
// count n of its satisfied bonds before (bit planes n0, n1, n2) and its flips: Z - n where
// the spin stays, n where it flips. Bit-sliced Z - n: Z = 6: (n0, ~(n1 ^ n0), ~(n2 ^ n1 n0));
// Z = 4: (n0, n1 ^ n0, ~(n2 | n1 | n0)); Z = 2: (n0, ~(n1 | n0), 0). The weight-8 carry goes
// to l.buf8[n8].
template <int Z>
static inline void count_site(BitCounter::Lanes& l, int n8, vec n0, vec n1, vec n2, vec flip) {
    const vec ones_ = vset(~0ULL);
    vec u1, u2;  // bit 0 is n0 either way
    if (Z == 6) {
        const vec n10 = vand(n1, n0);
        u1 = vxor(vxor(vxor(n1, n0), ones_), vandn(n0, flip));   // flip: n1 = r1 ^ ~n0
        u2 = vxor(vxor(vxor(n2, n10), ones_), vandn(n10, flip));  // flip: n2 = r2 ^ ~(n1 n0)
    } else if (Z == 4) {
        const vec r1 = vxor(n1, n0), r2 = vxor(vor(vor(n2, n1), n0), ones_);
        u1 = vxor(r1, vand(flip, vxor(n1, r1)));
        u2 = vxor(r2, vand(flip, vxor(n2, r2)));
    } else {
        const vec r1 = vxor(vor(n1, n0), ones_);
        u1 = vxor(r1, vand(flip, vxor(n1, r1)));
        u2 = vand(flip, n2);  // n2 = 0 when Z = 2
    }
    vec ones = l.ones, twos = l.twos, fours = l.fours, h1, e;
    const vec h0 = vand(ones, n0);
    ones = vxor(ones, n0);
    vcsa(h1, twos, twos, u1, h0);
    vcsa(e, fours, fours, u2, h1);
    l.ones = ones; l.twos = twos; l.fours = fours;
    l.buf8[n8] = e;
}

struct Ctx {  // everything the update loop reads, in locals the compiler can keep in registers
    int64_t n0, n1, n2, n0e, ghost, par0, Wv, nv, nact;
    int act[2 * 3 + 1];
    const int64_t* site_ids;
    uint64_t* S;
    const uint64_t* J;
    const uint64_t* T;
    const uint64_t* K;
    BitCounter* count;  // the update that counts (C = true): unsatisfied bonds after it
};

// U vectors of words at one site (U independent dependency chains for the pipeline). C: also
// count the site's 2D bonds that are unsatisfied after its update (the last colour of a sweep
// on a bipartite lattice: its neighbours are final, and every bond has one such end).
template <int D, int U, bool C>
static inline void words(const Ctx& c, int64_t x, const int64_t* y, const int64_t* b, vec sk, int64_t o0,
                         BitCounter::Lanes* cnt, int n8) {
    const int Z = 2 * D;
    const int64_t Wv = c.Wv;
    uint64_t* __restrict S = c.S;
    const uint64_t* __restrict Jb = c.J;
    const uint64_t* __restrict T = c.T;
    const vec ones = vset(~0ULL);
    vec sx[U], flip[U], und[U], key[U], m[U][2 * 3 + 1];
    vec nsat[C ? U : 1][3];  // C: the satisfied-bond count of each vector, bit-sliced
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
        if constexpr (C) { nsat[u][0] = c0; nsat[u][1] = c1; nsat[u][2] = c2; }
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
    if constexpr (C)
        for (int u = 0; u < U; ++u)
            count_site<Z>(cnt[o0 / VW + u], n8, nsat[u][0], nsat[u][1], nsat[u][2], flip[u]);
}

template <int D, bool C>
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
    BitCounter::Lanes* cnt = C ? c.count->lanes.data() : nullptr;
    const int n8 = C ? c.count->n8 : 0;
    for (; v + 2 <= c.nv; v += 2) words<D, 2, C>(c, x, y, b, sk, v * VW, cnt, n8);
    for (; v < c.nv; ++v) words<D, 1, C>(c, x, y, b, sk, v * VW, cnt, n8);
    if (C) c.count->step();
}

template <int D, bool C>
static void update(const Ctx& c, uint64_t ck, int colour) {
    const int64_t p = (colour + c.par0) & 1;
    if (D == 1) {
        for (int64_t i0 = p; i0 < c.n0; i0 += 2) site<1, C>(c, ck, i0, 0, 0);
    } else if (D == 2) {
        for (int64_t i0 = 0; i0 < c.n0; ++i0)
            for (int64_t i1 = (p + i0) & 1; i1 < c.n1; i1 += 2) site<2, C>(c, ck, i0, i1, 0);
    } else {
        for (int64_t i0 = 0; i0 < c.n0; ++i0)
            for (int64_t i1 = 0; i1 < c.n1; ++i1)
                for (int64_t i2 = (p + i0 + i1) & 1; i2 < c.n2; i2 += 2) site<3, C>(c, ck, i0, i1, i2);
    }
}

// Unsatisfied bonds per lane of the word-inner spins after an update (periodic lattice, no
// ghosts), a pass of its own (when the update could not count them: odd sides): bond planes
// in groups of 8 through the carry-save adders of BitCounter; the numbers of msc_unsatisfied.
static void unsat_counts(const Ctx& c, int64_t d, int64_t W, int64_t* out) {
    // sites outer, vectors of words inner: every site reads contiguous rows of the word-inner
    // arrays; one carry-save state per vector (the add sequence, hence nb, is shared)
    const int64_t n0 = c.n0, n1 = c.n1, n2 = c.n2, Wv = c.Wv, nv = c.nv;
    BitCounter bc(nv);
    std::vector<vec> buf(nv * 8);
    int nb = 0;
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
                        BitCounter::Lanes& l = bc.lanes[v];
                        vec& ones = l.ones;
                        vec& twos = l.twos;
                        vec& fours = l.fours;
                        vec tA, tB, fA, fB, e;
                        vcsa(tA, ones, ones, b[0], b[1]);
                        vcsa(tB, ones, ones, b[2], b[3]);
                        vcsa(fA, twos, twos, tA, tB);
                        vcsa(tA, ones, ones, b[4], b[5]);
                        vcsa(tB, ones, ones, b[6], b[7]);
                        vcsa(fB, twos, twos, tA, tB);
                        vcsa(e, fours, fours, fA, fB);
                        l.buf8[bc.n8] = e;
                    }
                    bc.step();
                }
            }
    bc.counts(W, buf.data(), nb, out);
}

// One stage of the recursive 64 x 64 bit transpose: rows k and k + j (k with bit j clear) swap
// their j x j sub-blocks. Rows k .. k + j - 1 are contiguous: the compiler vectorises j >= 4.
template <int j, uint64_t m>
static inline void transpose_stage(uint64_t* __restrict a) {
    for (int base = 0; base < 64; base += 2 * j)
        for (int k = base; k < base + j; ++k) {
            const uint64_t t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
        }
}

static inline void transpose64(uint64_t a[64]) {  // a[i] bit j -> a[j] bit i
    transpose_stage<32, 0x00000000FFFFFFFFULL>(a);
    transpose_stage<16, 0x0000FFFF0000FFFFULL>(a);
    transpose_stage<8, 0x00FF00FF00FF00FFULL>(a);
    transpose_stage<4, 0x0F0F0F0F0F0F0F0FULL>(a);
    transpose_stage<2, 0x3333333333333333ULL>(a);
    transpose_stage<1, 0x5555555555555555ULL>(a);
}

extern "C" {

int64_t msc_vector_words() { return VW; }

int64_t msc_update(const Args* ap) {
    const Args& a = *ap;
    if (a.d < 1 || a.d > 3 || a.W < 1) return 1;
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
    c.par0 = a.par0; c.Wv = Wv; c.nv = Wv / VW; c.nact = 0;
    for (int64_t n = 0; n <= Z; ++n) {  // classes whose digits are needed: some lane may not flip
        bool need = false;
        for (int64_t w = 0; w < W && !need; ++w) need = a.thr[w * NT + n * 33] != -1;
        if (need) c.act[c.nact++] = (int)n;
    }
    c.site_ids = a.site_ids; c.S = a.s_inner ? (uint64_t*)a.s : S.data(); c.J = !a.J ? nullptr : a.J_inner ? (const uint64_t*)a.J : Jb.data(); c.T = T.data(); c.K = K.data();
    const int64_t nsweeps = a.colours == 2 ? a.nsweeps : 1;
    if (a.unsat && a.ghost) return 2;
    // the last colour-1 update counts the unsatisfied bonds when every bond joins the two
    // colours (even sides, periodic): each colour-1 site sees its 2d bonds, final after it
    const bool fuse = a.unsat && a.colours == 2 && a.n0 % 2 == 0 && (d < 2 || a.n1 % 2 == 0)
                      && (d < 3 || a.n2 % 2 == 0);
    BitCounter bc(fuse ? c.nv : 0);
    c.count = &bc;
    for (int64_t sw = 0; sw < nsweeps; ++sw)
        for (int colour = 0; colour < 2; ++colour) {
            if (a.colours != 2 && a.colours != colour) continue;
            const uint64_t cnt = (uint64_t)a.counter0 + 2 * (uint64_t)sw + (uint64_t)colour;
            const uint64_t ck = mix(((cnt + 1) * G) ^ S_CTR);  // rng.counter_key
            if (fuse && colour == 1 && sw == nsweeps - 1) {
                if (d == 1) update<1, true>(c, ck, colour);
                else if (d == 2) update<2, true>(c, ck, colour);
                else update<3, true>(c, ck, colour);
            } else {
                if (d == 1) update<1, false>(c, ck, colour);
                else if (d == 2) update<2, false>(c, ck, colour);
                else update<3, false>(c, ck, colour);
            }
        }
    if (fuse) bc.counts(W, nullptr, 0, a.unsat);
    else if (a.unsat) unsat_counts(c, d, W, a.unsat);
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
// Threshold words from per-value bit rows (the tempering update of every exchange): for each
// listed word w (all W when words is null) and each column i < nc, bit b of thr[w, cols[i]]
// (cols null: column i) = bit i of row which[64 w + b] (rows (V, KW) uint64, bit i of a row =
// bit i % 64 of its word i / 64, nc <= 64 KW); idle[w] (when given) is OR-ed onto the columns
// written that are word 0 of a class (thr[w, 33 n]). One 64 x 64 bit transpose per word and
// 64 columns: no branch on the data. Columns equal in every row need no rewrite after a first
// full build, when lanes change value: cols lists the others.
int64_t msc_set_thresholds(const uint64_t* rows, int64_t V, int64_t KW, const int64_t* cols, int64_t nc,
                           int64_t K, const int64_t* which, const int64_t* words, int64_t nw, int64_t W,
                           const uint64_t* idle, int64_t* thr) {
    if (K < 1 || K % 33 || nc < 0 || nc > 64 * KW || nw < 0) return 1;
    for (int64_t i = 0; i < nc; ++i) if ((cols ? cols[i] : i) < 0 || (cols ? cols[i] : i) >= K) return 1;
    uint64_t blk[64];
    const int64_t n = words ? nw : W;
    for (int64_t q = 0; q < n; ++q) {
        const int64_t w = words ? words[q] : q;
        if (w < 0 || w >= W) return 2;
        const int64_t* lane = which + 64 * w;
        for (int b = 0; b < 64; ++b) if (lane[b] < 0 || lane[b] >= V) return 3;
        uint64_t* o = (uint64_t*)thr + w * K;
        const uint64_t add = idle ? idle[w] : 0;
        for (int64_t j = 0; 64 * j < nc; ++j) {
            for (int b = 0; b < 64; ++b) blk[b] = rows[lane[b] * KW + j];
            transpose64(blk);  // blk[i] bit b = bit 64 j + i of lane b's row
            const int64_t top = nc - 64 * j < 64 ? nc - 64 * j : 64;
            for (int64_t i = 0; i < top; ++i) {
                const int64_t k = cols ? cols[64 * j + i] : 64 * j + i;
                o[k] = k % 33 ? blk[i] : blk[i] | add;
            }
        }
    }
    return 0;
}

}  // extern "C"
