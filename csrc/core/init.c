/* The official initialisation, drawn from a seeded generator (xoshiro256**, Box-Muller normals). */
#include <math.h>
#include <string.h>

#include "core/model.h"

typedef struct { uint64_t s[4]; } rng_state;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng_state *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* uniform in (0, 1) */
static double rng_uniform(rng_state *r) { return ((rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static double rng_normal(rng_state *r) {
    const double u1 = rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void model_init_params(ctrgcn_model *m, uint64_t seed) {
    rng_state rng;
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) rng.s[i] = splitmix64(&sm);
    for (int i = 0; i < m->num_tensors; i++) {
        const tensor_entry *e = &m->tensors[i];
        float *d = m->params + e->offset;
        switch (e->init) {
        case INIT_ZERO: memset(d, 0, sizeof(float) * e->numel); break;
        case INIT_ONE: for (size_t j = 0; j < e->numel; j++) d[j] = 1.0f; break;
        case INIT_CONST: for (size_t j = 0; j < e->numel; j++) d[j] = e->init_a; break;
        case INIT_KAIMING_FAN_OUT: { /* kaiming_normal_(mode='fan_out'), gain sqrt(2) */
            const double std = sqrt(2.0 / e->init_a);
            for (size_t j = 0; j < e->numel; j++) d[j] = (float)(std * rng_normal(&rng));
            break;
        }
        case INIT_NORMAL:
            for (size_t j = 0; j < e->numel; j++) d[j] = (float)(e->init_a + e->init_b * rng_normal(&rng));
            break;
        case INIT_UNIFORM:
            for (size_t j = 0; j < e->numel; j++)
                d[j] = (float)(e->init_a + (e->init_b - e->init_a) * rng_uniform(&rng));
            break;
        case INIT_GRAPH: /* PA starts as the graph A */
            graph_adjacency(&m->spec, d);
            break;
        }
    }
}
