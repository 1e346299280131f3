/* Sessions from many threads: 8 threads predicting with one model (each its own session, its
 * own shapes), and one thread training a second model meanwhile. Every prediction must equal the
 * one made by a single calling thread bit for bit. Usage: concurrency [THREADS_PER_SESSION]. tests/test_concurrency.py builds it with AddressSanitizer and
 * with ThreadSanitizer and runs it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "ctrgcn.h"

enum { THREADS = 8, SHAPES = 4, ROUNDS = 3, K = 6 };
static const int shapes[SHAPES][2] = {{1, 5}, {2, 3}, {1, 1}, {3, 4}}; /* (N, T) */

static ctrgcn_model *shared;
static float *inputs[SHAPES], *expected[SHAPES];
static int joints, failures, session_threads = 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what) {
    pthread_mutex_lock(&lock);
    failures++;
    fprintf(stderr, "FAIL %s: %s\n", what, ctrgcn_last_error());
    pthread_mutex_unlock(&lock);
}

static size_t numel(int s) { return (size_t)shapes[s][0] * 3 * shapes[s][1] * joints; }

static void *predictor(void *arg) {
    const int id = (int)(size_t)arg;
    ctrgcn_session *se;
    if (ctrgcn_session_init(&se, shared, "cpu", session_threads) != CTRGCN_OK) {
        fail("session");
        return NULL;
    }
    float logits[3 * K];
    for (int r = 0; r < ROUNDS; r++) {
        const int s = (id + r) % SHAPES;
        if (ctrgcn_session_forward(se, inputs[s], shapes[s][0], shapes[s][1], logits) != CTRGCN_OK) fail("forward");
        else if (memcmp(logits, expected[s], sizeof(float) * shapes[s][0] * K) != 0) fail("logits differ");
    }
    ctrgcn_session_free(se);
    return NULL;
}

static void *trainer(void *arg) {
    ctrgcn_model *m = arg;
    ctrgcn_session *tr;
    if (ctrgcn_session_init(&tr, m, "cpu", session_threads) != CTRGCN_OK || ctrgcn_session_set_sgd(tr, 0.9f, 1e-4f, 1) != CTRGCN_OK) {
        fail("training session");
        return NULL;
    }
    float targets[2 * K] = {0}, logits[2 * K];
    targets[1] = targets[K + 2] = 1.0f;
    double loss;
    for (int step = 0; step < 3; step++)
        if (ctrgcn_session_train_step(tr, inputs[1], 2, 3, targets, 0.01f, logits, &loss) != CTRGCN_OK) fail("step");
    if (ctrgcn_session_write_params(tr, m) != CTRGCN_OK) fail("write back");
    ctrgcn_session_free(tr);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) session_threads = atoi(argv[1]); /* OpenMP threads inside each session */
    ctrgcn_spec spec;
    if (ctrgcn_spec_preset(&spec, "CTRGCN_lightV2", "ucla", K, 1, 3) != CTRGCN_OK ||
        ctrgcn_spec_set_base(&spec, 8) != CTRGCN_OK || ctrgcn_model_init(&shared, &spec, 3) != CTRGCN_OK) {
        fail("model");
        return 1;
    }
    joints = spec.num_joints;
    ctrgcn_model *other;
    if (ctrgcn_model_init(&other, &spec, 4) != CTRGCN_OK) return 1;
    ctrgcn_session *one;
    /* the reference: one calling thread, with the sessions' own OpenMP team (how a session splits its
     * work over that team may round differently from a one-thread session; the race this test looks
     * for is between calling threads) */
    if (ctrgcn_session_init(&one, shared, "cpu", session_threads) != CTRGCN_OK) return 1;
    for (int s = 0; s < SHAPES; s++) {
        inputs[s] = malloc(sizeof(float) * numel(s));
        expected[s] = malloc(sizeof(float) * shapes[s][0] * K);
        for (size_t i = 0; i < numel(s); i++) inputs[s][i] = (float)sin(0.1 * (double)i + s);
        if (ctrgcn_session_forward(one, inputs[s], shapes[s][0], shapes[s][1], expected[s]) != CTRGCN_OK) return 1;
    }
    ctrgcn_session_free(one);
    pthread_t th[THREADS + 1];
    for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, predictor, (void *)(size_t)t);
    pthread_create(&th[THREADS], NULL, trainer, other);
    for (int t = 0; t <= THREADS; t++) pthread_join(th[t], NULL);
    for (int s = 0; s < SHAPES; s++) {
        free(inputs[s]);
        free(expected[s]);
    }
    ctrgcn_model_free(other);
    ctrgcn_model_free(shared);
    if (failures) return 1;
    printf("concurrency: %d threads ok\n", THREADS + 1);
    return 0;
}
