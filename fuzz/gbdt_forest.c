/* Fuzz target: gbdt_predict's tree reader and predictor (gbdt_forest.c,
 * mt_gbdt_forest_parse). Input: one byte choosing the number of features
 * (1 to 8), then the model's UBJSON (as XGBoost 1.7 writes it). A refusal must be MT_EINVAL with
 * the fixed prefix (no input byte) or MT_ENOMEM; an accepted model must predict rows built from the
 * input's bytes (NaN, +-inf, -0, values), dense and CSR, with the same bits both ways,
 * probabilities in [0, 1] for binary:logistic and never NaN. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gbdt_forest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROWS 70 /* more than one block of rows */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nf = (size_t)(data[0] % 8) + 1;
    mt_gbdt_forest *f = NULL;
    mt_err err;
    mt_status st = mt_gbdt_forest_parse(data + 1, size - 1, nf, &f, &err);
    if (st != MT_OK) {
        if (f || (st != MT_ENOMEM &&
                  (st != MT_EINVAL ||
                   strncmp(err.msg, "gbdt model not for the own predictor: ", 38) != 0)))
            abort();
        return 0;
    }
    static const float special[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 1.0f, -1.0f, 0.5f};
    float x[ROWS * 8], p1[ROWS], p2[ROWS], v[ROWS * 8];
    size_t ip[ROWS + 1];
    unsigned ix[ROWS * 8];
    size_t k = 0;
    ip[0] = 0;
    for (size_t r = 0; r < ROWS; r++) {
        for (size_t c = 0; c < nf; c++) {
            uint8_t b = data[(r * nf + c) % size];
            x[r * nf + c] = b < 128 ? special[b % 8] : (float)(b - 192) / 8.0f;
            if (!isnan(x[r * nf + c])) {
                ix[k] = (unsigned)c;
                v[k++] = x[r * nf + c];
            }
        }
        ip[r + 1] = k;
    }
    if (mt_gbdt_forest_predict_dense(f, x, ROWS, 2, p1, &err) != MT_OK ||
        mt_gbdt_forest_predict_csr(f, ip, ix, v, ROWS, 1, p2, &err) != MT_OK ||
        memcmp(p1, p2, sizeof p1) != 0)
        abort();
    for (size_t r = 0; r < ROWS; r++)
        if (isnan(p1[r]) || (mt_gbdt_forest_is_logistic(f) && !(p1[r] >= 0 && p1[r] <= 1)))
            abort();
    mt_gbdt_forest_free(f);
    return 0;
}
