/* builtin_image: the image_classify and face_detect built-ins (issue 12, docs/nn.md
 * "image_classify built-in" and "face_detect built-in").
 *
 * The model owner's ONNX model (slot model_slot) runs on the data owner's JPEG or PNG
 * images (every other input slot, in slot-name order; image_classify also skips
 * labels_slot), decoded inside the worker (image_decode.h), resized bilinearly to the
 * model's input size and normalised per the task's arguments. image_classify writes
 * the top-k classes with their scores; face_detect keeps the detections above a score
 * threshold and suppresses overlaps (greedy NMS). The result goes to output_slot,
 * encrypted for that slot's owner.
 *
 * Runs inside the sandboxed worker only (linked into the worker executables with
 * mt_nn, never into the daemon). The task's reason, which every participant reads,
 * names the slot, stage and kind of failure, never node names, labels, pixel values or
 * an image's dimensions; the engine's own message goes to the operator-only detail. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_csv.h"
#include "builtin_ml.h"
#include "image_decode.h"
#include "mt_builtin.h"
#include "mt_bschema.h"
#include "mt_util.h"
#include "nn.h"

#define IMG_MAX_SIZE 4096             /* the model's input height/width at most */
#define LABELS_MAX_LINES 100000
#define LABELS_MAX_LINE 1024
#define TOPK_MAX 1000

typedef struct {
    const char *name;      /* "image_classify" or "face_detect" */
    mt_bctx *ctx;
    int64_t threads, mem_mb;
    int64_t height, width; /* 0: from the model */
    double mean[3], std[3];
    bool bgr, nhwc;
    bool json;
    mt_image_limits lim;
    mt_nn_model *m;
    mt_nn_tensor in;       /* prepared shape; data: the float buffer */
    size_t nout;
    mt_nn_tensor outs[4];
    const mt_bctx_input **images;
    size_t n_images;
    long oidx;
} img_task;

static const char *arg_str(const mt_bctx *ctx, const char *name, const char *dflt)
{
    const char *v = mt_bctx_arg(ctx, name);
    return v && *v ? v : dflt;
}

static mt_status arg_i(const img_task *t, const char *name, int64_t dflt, int64_t lo, int64_t hi,
                       int64_t *out, mt_err *err)
{
    const char *v = mt_bctx_arg(t->ctx, name);
    *out = dflt;
    if (v && *v && !mt_int_parse(v, out))
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected an integer", name);
    if (*out < lo || *out > hi)
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected %lld..%lld", name,
                          (long long)lo, (long long)hi);
    return MT_OK;
}

static mt_status arg_d(const img_task *t, const char *name, double dflt, double lo, double hi,
                       double *out, mt_err *err)
{
    const char *v = mt_bctx_arg(t->ctx, name);
    *out = dflt;
    if (v && *v) {
        char *ep;
        errno = 0;
        *out = strtod(v, &ep);
        if (errno || *ep || ep == v)
            return mt_err_set(err, MT_EINVAL, "argument '%s': expected a number", name);
    }
    if (!(*out >= lo && *out <= hi))
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected %g..%g", name, lo, hi);
    return MT_OK;
}

/* "a,b,c": three finite numbers (std: each > 0) */
static mt_status arg_triple(const img_task *t, const char *name, const char *dflt, bool positive,
                            double v[3], mt_err *err)
{
    const char *s = arg_str(t->ctx, name, dflt);
    for (int i = 0; i < 3; i++) {
        char *ep;
        errno = 0;
        v[i] = strtod(s, &ep);
        if (ep == s || errno || !isfinite(v[i]) || (positive && !(v[i] > 0)) ||
            (i < 2 ? *ep != ',' : *ep != 0))
            return mt_err_set(err, MT_EINVAL,
                              "argument '%s': expected three comma-separated numbers%s", name,
                              positive ? " above 0" : "");
        s = ep + 1;
    }
    return MT_OK;
}

static mt_status engine_fail(img_task *t, int rc, const char *stage, const char *msg, mt_err *err)
{
    mt_bctx_detail(t->ctx, "%s %s: %s", t->name, stage, msg);
    switch (rc) {
    case MT_NN_EUNSUPPORTED:
        return mt_err_set(err, MT_EINVAL,
                          "%s: %s: the model uses an operator, attribute, type or dynamic shape "
                          "the engine does not support",
                          t->name, stage);
    case MT_NN_ESHAPE:
        return mt_err_set(err, MT_EINVAL, "%s: %s: shapes do not fit", t->name, stage);
    case MT_NN_ENOMEM:
        return mt_err_set(err, MT_ETOOBIG,
                          "%s: %s: the model needs more than the memory cap of %lld MiB "
                          "(argument memory_mb)",
                          t->name, stage, (long long)t->mem_mb);
    default:
        return mt_err_set(err, MT_EINVAL, "%s: %s: the model is malformed or invalid", t->name,
                          stage);
    }
}

static int slot_cmp(const void *a, const void *b)
{
    const mt_bctx_input *x = *(const mt_bctx_input *const *)a;
    const mt_bctx_input *y = *(const mt_bctx_input *const *)b;
    return strcmp(x->slot, y->slot);
}

/* arguments common to both built-ins, the image slots, the model loaded and prepared */
static mt_status task_open(img_task *t, const char *dmean, const char *dstd, const char *skip2,
                           mt_err *err)
{
    mt_bctx *ctx = t->ctx;
    int64_t half_mb = ctx->mem_limit ? (int64_t)(ctx->mem_limit >> 21) : 1024;
    if (half_mb < 1)
        half_mb = 1;
    int64_t max_px;
    mt_status rc;
    if ((rc = arg_i(t, "threads", 1, 1, 16, &t->threads, err)) != MT_OK ||
        (rc = arg_i(t, "memory_mb", half_mb, 1, 65536, &t->mem_mb, err)) != MT_OK ||
        (rc = arg_i(t, "height", 0, 0, IMG_MAX_SIZE, &t->height, err)) != MT_OK ||
        (rc = arg_i(t, "width", 0, 0, IMG_MAX_SIZE, &t->width, err)) != MT_OK ||
        (rc = arg_i(t, "max_pixels", 16777216, 1, 268435456, &max_px, err)) != MT_OK ||
        (rc = arg_triple(t, "mean", dmean, false, t->mean, err)) != MT_OK ||
        (rc = arg_triple(t, "std", dstd, true, t->std, err)) != MT_OK)
        return rc;
    if (t->mem_mb > half_mb) {
        mt_bctx_log(ctx, "%s: memory_mb lowered to %lld (half the task's memory limit)", t->name,
                    (long long)half_mb);
        t->mem_mb = half_mb;
    }
    const char *order = arg_str(ctx, "channel_order", "rgb");
    const char *layout = arg_str(ctx, "layout", "nchw");
    const char *ofmt = arg_str(ctx, "output_format", "csv");
    if (strcmp(order, "rgb") && strcmp(order, "bgr"))
        return mt_err_set(err, MT_EINVAL, "argument 'channel_order': expected rgb or bgr");
    if (strcmp(layout, "nchw") && strcmp(layout, "nhwc"))
        return mt_err_set(err, MT_EINVAL, "argument 'layout': expected nchw or nhwc");
    if (strcmp(ofmt, "csv") && strcmp(ofmt, "json"))
        return mt_err_set(err, MT_EINVAL, "argument 'output_format': expected csv or json");
    t->bgr = !strcmp(order, "bgr");
    t->nhwc = !strcmp(layout, "nhwc");
    t->json = !strcmp(ofmt, "json");
    t->lim.max_side = 32768;
    t->lim.max_pixels = (uint64_t)max_px;

    const char *model_slot = arg_str(ctx, "model_slot", "model");
    const char *output_slot = arg_str(ctx, "output_slot", "output");
    const mt_bctx_input *min = mt_bctx_input_find(ctx, model_slot);
    if (!min)
        return mt_err_set(err, MT_EINVAL, "%s: no input slot '%s' (argument model_slot)",
                          t->name, model_slot);
    t->oidx = ml_output_find(ctx, output_slot);
    if (t->oidx < 0)
        return mt_err_set(err, MT_EINVAL, "%s: no output slot '%s' (argument output_slot)",
                          t->name, output_slot);
    t->images = calloc(ctx->n_inputs ? ctx->n_inputs : 1, sizeof *t->images);
    if (!t->images)
        return mt_err_set(err, MT_ENOMEM, "%s: out of memory", t->name);
    for (size_t i = 0; i < ctx->n_inputs; i++)
        if (strcmp(ctx->inputs[i].slot, model_slot) && (!skip2 || strcmp(ctx->inputs[i].slot, skip2)))
            t->images[t->n_images++] = &ctx->inputs[i];
    if (!t->n_images)
        return mt_err_set(err, MT_EINVAL, "%s: no image slot (every input slot other than the "
                          "model's holds one image)", t->name);
    qsort(t->images, t->n_images, sizeof *t->images, slot_cmp);

    /* oneDNN's VTune hooks would open files the sandbox refuses (builtin_onnx.c) */
    if (setenv("DNNL_ITT_TASK_LEVEL", "0", 1) != 0 || setenv("DNNL_JIT_PROFILE", "0", 1) != 0)
        return mt_err_set(err, MT_ENOMEM, "%s: out of memory", t->name);
    char msg[512];
    mt_nn_limits lim = {.mem_cap = (size_t)t->mem_mb << 20, .threads = (int)t->threads};
    int nrc = mt_nn_load(min->data, min->len, &lim, &t->m, msg, sizeof msg);
    if (nrc != MT_NN_OK)
        return engine_fail(t, nrc, "loading the model", msg, err);
    if (mt_nn_num_inputs(t->m) != 1)
        return mt_err_set(err, MT_EINVAL, "%s: the model must have exactly one input (the image)",
                          t->name);
    mt_nn_tensor decl;
    if (mt_nn_input_decl(t->m, 0, &decl) != MT_NN_OK || decl.dtype != MT_NN_FLOAT ||
        decl.rank != 4)
        return mt_err_set(err, MT_EINVAL,
                          "%s: the model's input must be a float tensor of rank 4 (%s)", t->name,
                          t->nhwc ? "NHWC" : "NCHW");
    int hd = t->nhwc ? 1 : 2, wd = t->nhwc ? 2 : 3, cd = t->nhwc ? 3 : 1;
    if ((decl.dims[0] >= 0 && decl.dims[0] != 1) || (decl.dims[cd] >= 0 && decl.dims[cd] != 3))
        return mt_err_set(err, MT_EINVAL,
                          "%s: the model's input must take a batch of 1 and 3 channels "
                          "(argument layout=%s)",
                          t->name, t->nhwc ? "nhwc" : "nchw");
    int64_t dh = decl.dims[hd], dw = decl.dims[wd];
    if (!t->height)
        t->height = dh > 0 ? dh : 224;
    if (!t->width)
        t->width = dw > 0 ? dw : 224;
    if ((dh > 0 && dh != t->height) || (dw > 0 && dw != t->width))
        return mt_err_set(err, MT_EINVAL,
                          "%s: arguments height/width differ from the model's declared input size",
                          t->name);
    if (t->height > IMG_MAX_SIZE || t->width > IMG_MAX_SIZE)
        return mt_err_set(err, MT_EINVAL, "%s: the model's input size is above %d", t->name,
                          IMG_MAX_SIZE);
    t->in.dtype = MT_NN_FLOAT;
    t->in.rank = 4;
    t->in.dims[0] = 1;
    t->in.dims[hd] = t->height;
    t->in.dims[wd] = t->width;
    t->in.dims[cd] = 3;
    size_t n = (size_t)t->height * (size_t)t->width * 3;
    if (n * sizeof(float) > ((size_t)t->mem_mb << 20))
        return mt_err_set(err, MT_ETOOBIG, "%s: the model's input is above the memory cap",
                          t->name);
    nrc = mt_nn_prepare(t->m, &t->in, 1, msg, sizeof msg);
    if (nrc != MT_NN_OK)
        return engine_fail(t, nrc, "preparing the model", msg, err);
    t->nout = mt_nn_num_outputs(t->m);
    if (t->nout < 1 || t->nout > 4)
        return mt_err_set(err, MT_EINVAL, "%s: the model has no outputs or more than 4", t->name);
    t->in.data = malloc(n * sizeof(float));
    if (!t->in.data)
        return mt_err_set(err, MT_ENOMEM, "%s: out of memory for the input tensor", t->name);
    return MT_OK;
}

static void task_close(img_task *t)
{
    if (t->in.data)
        mt_wipe(t->in.data, (size_t)t->height * (size_t)t->width * 3 * sizeof(float));
    free(t->in.data);
    free(t->images);
    mt_nn_free(t->m);
}

/* Bilinear resize with half-pixel centres (the source coordinate of destination pixel d
 * is (d + 0.5) * in/out - 0.5, clamped at 0; no antialiasing: torch's
 * F.interpolate(mode="bilinear", align_corners=False)), then
 * (value / 255 - mean[c]) / std[c] in the model's channel order and layout. */
static void preprocess(const img_task *t, const mt_image *im)
{
    float *dst = t->in.data;
    size_t oh = (size_t)t->height, ow = (size_t)t->width;
    double sy = (double)im->height / (double)oh, sx = (double)im->width / (double)ow;
    size_t plane = oh * ow;
    for (size_t y = 0; y < oh; y++) {
        double fy = ((double)y + 0.5) * sy - 0.5;
        if (fy < 0)
            fy = 0;
        size_t y0 = (size_t)fy;
        size_t y1 = y0 + (y0 + 1 < im->height ? 1 : 0);
        double ly = fy - (double)y0;
        const uint8_t *r0 = im->rgb + y0 * im->width * 3, *r1 = im->rgb + y1 * im->width * 3;
        for (size_t x = 0; x < ow; x++) {
            double fx = ((double)x + 0.5) * sx - 0.5;
            if (fx < 0)
                fx = 0;
            size_t x0 = (size_t)fx;
            size_t x1 = x0 + (x0 + 1 < im->width ? 1 : 0);
            double lx = fx - (double)x0;
            for (int c = 0; c < 3; c++) {
                double v = (1 - ly) * ((1 - lx) * r0[x0 * 3 + c] + lx * r0[x1 * 3 + c]) +
                           ly * ((1 - lx) * r1[x0 * 3 + c] + lx * r1[x1 * 3 + c]);
                int oc = t->bgr ? 2 - c : c;
                float f = (float)((v / 255.0 - t->mean[oc]) / t->std[oc]);
                if (t->nhwc)
                    dst[(y * ow + x) * 3 + (size_t)oc] = f;
                else
                    dst[(size_t)oc * plane + y * ow + x] = f;
            }
        }
    }
}

/* decodes image i and runs the model on it (outputs in t->outs) */
static mt_status run_image(img_task *t, size_t i, mt_image *im, mt_err *err)
{
    const mt_bctx_input *in = t->images[i];
    mt_status rc = mt_image_decode(in->data, in->len, &t->lim, im, err);
    if (rc != MT_OK)
        return mt_err_prefix(err, rc, "%s: image slot '%s': ", t->name, in->slot);
    preprocess(t, im);
    char msg[512];
    int nrc = mt_nn_run(t->m, &t->in, 1, t->outs, t->nout, msg, sizeof msg);
    if (nrc != MT_NN_OK)
        return engine_fail(t, nrc, "running the model", msg, err);
    return MT_OK;
}

static size_t tensor_count(const mt_nn_tensor *o)
{
    size_t n = 1;
    for (int i = 0; i < o->rank; i++)
        n *= (size_t)o->dims[i];
    return n;
}

static mt_status write_result(img_task *t, mt_sbuf *csv, json_t *js, mt_err *err)
{
    mt_status rc;
    if (t->json) {
        char *s = json_dumps(js, JSON_COMPACT | JSON_REAL_PRECISION(9));
        if (!s)
            return mt_err_set(err, MT_ENOMEM, "%s: out of memory", t->name);
        rc = mt_bctx_output_write(t->ctx, (size_t)t->oidx, s, strlen(s), err);
        if (rc == MT_OK)
            rc = mt_bctx_output_write(t->ctx, (size_t)t->oidx, "\n", 1, err);
        free(s);
        return rc;
    }
    if (csv->oom)
        return mt_err_set(err, MT_ENOMEM, "%s: out of memory", t->name);
    return ml_sbuf_write(t->ctx, (size_t)t->oidx, csv, err);
}

typedef struct {
    double score;
    size_t idx;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* ---- image_classify ------------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n;
    char *buf;
} labels;

/* one label per line (LF or CRLF), a final empty line ignored; every line at most
 * LABELS_MAX_LINE bytes, no NUL */
static mt_status labels_read(const mt_bctx_input *in, labels *l, mt_err *err)
{
    if (in->len > (size_t)LABELS_MAX_LINES * (LABELS_MAX_LINE + 2))
        return mt_err_set(err, MT_ETOOBIG, "image_classify: labels slot '%s': file too large",
                          in->slot);
    if (memchr(in->data, 0, in->len))
        return mt_err_set(err, MT_EINVAL, "image_classify: labels slot '%s': a NUL byte",
                          in->slot);
    l->buf = malloc(in->len + 1);
    l->v = calloc(LABELS_MAX_LINES, sizeof *l->v);
    if (!l->buf || !l->v)
        return mt_err_set(err, MT_ENOMEM, "image_classify: out of memory");
    memcpy(l->buf, in->data, in->len);
    l->buf[in->len] = 0;
    char *p = l->buf, *end = l->buf + in->len;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *le = eol ? eol : end;
        *le = 0;
        if (le > p && le[-1] == '\r')
            *--le = 0;
        if (l->n == LABELS_MAX_LINES || (size_t)(le - p) > LABELS_MAX_LINE)
            return mt_err_set(err, MT_EINVAL,
                              "image_classify: labels slot '%s': more than %d lines or a line "
                              "longer than %d bytes",
                              in->slot, LABELS_MAX_LINES, LABELS_MAX_LINE);
        l->v[l->n++] = p;
        p = eol ? eol + 1 : end;
    }
    return MT_OK;
}

mt_status mt_builtin_image_classify(mt_bctx *ctx, char **ret, mt_err *err)
{
    img_task t = {.name = "image_classify", .ctx = ctx};
    labels lab = {0};
    mt_sbuf csv = {0};
    json_t *js = NULL;
    double *prob = NULL;
    cand *top = NULL;
    int64_t k, sm = 1;
    const char *labels_slot = arg_str(ctx, "labels_slot", NULL);
    const char *smv = arg_str(ctx, "softmax", "true");
    mt_status rc = arg_i(&t, "top_k", 5, 1, TOPK_MAX, &k, err);
    if (rc != MT_OK)
        return rc;
    if (!strcmp(smv, "false"))
        sm = 0;
    else if (strcmp(smv, "true"))
        return mt_err_set(err, MT_EINVAL, "argument 'softmax': expected true or false");
    const mt_bctx_input *lin = labels_slot ? mt_bctx_input_find(ctx, labels_slot) : NULL;
    if (labels_slot && !lin)
        return mt_err_set(err, MT_EINVAL, "image_classify: no input slot '%s' (argument "
                          "labels_slot)", labels_slot);
    if (lin && (rc = labels_read(lin, &lab, err)) != MT_OK)
        goto done;
    if ((rc = task_open(&t, "0.485,0.456,0.406", "0.229,0.224,0.225", labels_slot, err)) != MT_OK)
        goto done;
    const mt_nn_tensor *o = &t.outs[0];
    js = json_object();
    json_t *arr = json_array();
    if (!js || !arr || json_object_set_new(js, "images", arr)) {
        rc = mt_err_set(err, MT_ENOMEM, "image_classify: out of memory");
        goto done;
    }
    if (!t.json)
        mt_sbuf_puts(&csv, "image,rank,class,label,score\n");
    size_t classes = 0;
    for (size_t i = 0; i < t.n_images; i++) {
        mt_image im;
        rc = run_image(&t, i, &im, err);
        mt_image_free(&im);
        if (rc != MT_OK)
            goto done;
        if (o->dtype != MT_NN_FLOAT || (o->rank >= 2 && o->dims[0] != 1)) {
            rc = mt_err_set(err, MT_EINVAL,
                            "image_classify: the model's first output must be float scores of "
                            "shape [1, classes]");
            goto done;
        }
        classes = tensor_count(o);
        if (!classes) {
            rc = mt_err_set(err, MT_EINVAL, "image_classify: the model's output is empty");
            goto done;
        }
        if (lin && lab.n != classes) {
            rc = mt_err_set(err, MT_EINVAL,
                            "image_classify: the labels slot's line count differs from the "
                            "model's class count");
            goto done;
        }
        if (!prob) {
            prob = malloc(classes * sizeof *prob);
            top = malloc(classes * sizeof *top);
            if (!prob || !top) {
                rc = mt_err_set(err, MT_ENOMEM, "image_classify: out of memory");
                goto done;
            }
        }
        const float *s = o->data;
        double mx = -INFINITY, sum = 0;
        for (size_t c = 0; c < classes; c++) {
            if (!isfinite(s[c])) {
                rc = mt_err_set(err, MT_EINVAL,
                                "image_classify: image slot '%s': the model produced a "
                                "non-finite score",
                                t.images[i]->slot);
                goto done;
            }
            prob[c] = s[c];
            if (prob[c] > mx)
                mx = prob[c];
        }
        if (sm) {
            for (size_t c = 0; c < classes; c++)
                sum += (prob[c] = exp(prob[c] - mx));
            for (size_t c = 0; c < classes; c++)
                prob[c] /= sum;
        }
        /* top-k: highest score first, a tie to the lower class index */
        size_t kk = (size_t)k < classes ? (size_t)k : classes;
        for (size_t c = 0; c < classes; c++)
            top[c] = (cand){prob[c], c};
        qsort(top, classes, sizeof *top, cand_cmp);
        json_t *one = json_object(), *tops = json_array();
        if (!one || !tops || json_array_append_new(arr, one) ||
            json_object_set_new(one, "image", json_string(t.images[i]->slot)) ||
            json_object_set_new(one, "top", tops)) {
            json_decref(tops);
            rc = mt_err_set(err, MT_ENOMEM, "image_classify: out of memory");
            goto done;
        }
        for (size_t r = 0; r < kk; r++) {
            size_t cl = top[r].idx;
            const char *label = lin ? lab.v[cl] : "";
            if (t.json) {
                json_t *e = json_pack("{s:I,s:I,s:f}", "rank", (json_int_t)(r + 1), "class",
                                      (json_int_t)cl, "score", top[r].score);
                if (e && lin) {
                    json_t *ls = json_stringn(label, strlen(label));
                    /* a label that is not UTF-8 is written as null */
                    json_object_set_new(e, "label", ls ? ls : json_null());
                }
                if (!e || json_array_append_new(tops, e)) {
                    rc = mt_err_set(err, MT_ENOMEM, "image_classify: out of memory");
                    goto done;
                }
                continue;
            }
            mt_sbuf_csv_field(&csv, t.images[i]->slot, strlen(t.images[i]->slot));
            mt_sbuf_printf(&csv, ",%zu,%zu,", r + 1, cl);
            mt_sbuf_csv_field(&csv, label, strlen(label));
            mt_sbuf_printf(&csv, ",%.9g\n", top[r].score);
        }
    }
    if ((rc = write_result(&t, &csv, js, err)) != MT_OK)
        goto done;
    mt_bctx_log(ctx, "image_classify: %zu images, input %lldx%lld, %zu classes, %zu nodes, "
                "%lld threads",
                t.n_images, (long long)t.height, (long long)t.width, classes,
                mt_nn_num_nodes(t.m), (long long)t.threads);
    char r[64];
    snprintf(r, sizeof r, "images: %zu", t.n_images);
    *ret = strdup(r);
    if (!*ret)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
done:
    json_decref(js);
    mt_sbuf_free(&csv);
    free(prob);
    free(top);
    free(lab.v);
    free(lab.buf);
    task_close(&t);
    return rc;
}

/* ---- face_detect ---------------------------------------------------------------- */

static double box_iou(const float *a, const float *b)
{
    double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]);
    double ih = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    double inter = iw > 0 && ih > 0 ? iw * ih : 0;
    double aa = fmax(0, (double)a[2] - a[0]) * fmax(0, (double)a[3] - a[1]);
    double ab = fmax(0, (double)b[2] - b[0]) * fmax(0, (double)b[3] - b[1]);
    double u = aa + ab - inter;
    return u > 0 ? inter / u : 0;
}

static double clamp01(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

mt_status mt_builtin_face_detect(mt_bctx *ctx, char **ret, mt_err *err)
{
    img_task t = {.name = "face_detect", .ctx = ctx};
    mt_sbuf csv = {0};
    json_t *js = NULL;
    cand *cands = NULL;
    size_t *kept = NULL;
    int64_t maxdet, cls;
    double sth, ith;
    mt_status rc;
    if ((rc = arg_d(&t, "score_threshold", 0.7, 0, 1, &sth, err)) != MT_OK ||
        (rc = arg_d(&t, "iou_threshold", 0.3, 0, 1, &ith, err)) != MT_OK ||
        (rc = arg_i(&t, "max_detections", 100, 1, 10000, &maxdet, err)) != MT_OK ||
        (rc = arg_i(&t, "class", 1, 0, 65535, &cls, err)) != MT_OK)
        return rc;
    if ((rc = task_open(&t, "0.5,0.5,0.5", "0.5,0.5,0.5", NULL, err)) != MT_OK)
        goto done;
    /* outputs: named "scores" and "boxes", else the first two in that order */
    size_t si = 0, bi = 1;
    for (size_t i = 0; i < t.nout; i++) {
        const char *n = mt_nn_output_name(t.m, i);
        if (n && !strcmp(n, "scores"))
            si = i;
        else if (n && !strcmp(n, "boxes"))
            bi = i;
    }
    if (t.nout < 2 || si == bi) {
        rc = mt_err_set(err, MT_EINVAL,
                        "face_detect: the model must have two outputs, scores [1,N,C] and boxes "
                        "[1,N,4]");
        goto done;
    }
    js = json_object();
    json_t *arr = json_array();
    if (!js || !arr || json_object_set_new(js, "images", arr)) {
        rc = mt_err_set(err, MT_ENOMEM, "face_detect: out of memory");
        goto done;
    }
    if (!t.json)
        mt_sbuf_puts(&csv, "image,score,x1,y1,x2,y2,x1_px,y1_px,x2_px,y2_px\n");
    for (size_t i = 0; i < t.n_images; i++) {
        mt_image im;
        rc = run_image(&t, i, &im, err);
        uint32_t iw = im.width, ih = im.height;
        mt_image_free(&im);
        if (rc != MT_OK)
            goto done;
        const mt_nn_tensor *so = &t.outs[si], *bo = &t.outs[bi];
        int sr = so->rank, br = bo->rank;
        bool ok = so->dtype == MT_NN_FLOAT && bo->dtype == MT_NN_FLOAT &&
                  (sr == 3 || sr == 2) && sr == br && (sr == 2 || (so->dims[0] == 1 && bo->dims[0] == 1)) &&
                  bo->dims[br - 1] == 4 && so->dims[sr - 2] == bo->dims[br - 2];
        if (!ok) {
            rc = mt_err_set(err, MT_EINVAL,
                            "face_detect: the model's outputs must be float scores [1,N,C] and "
                            "boxes [1,N,4] (or [N,C] and [N,4])");
            goto done;
        }
        size_t n = (size_t)so->dims[sr - 2], c = (size_t)so->dims[sr - 1];
        if ((size_t)cls >= c) {
            rc = mt_err_set(err, MT_EINVAL,
                            "argument 'class': the model's scores have fewer classes");
            goto done;
        }
        const float *sc = so->data, *bx = bo->data;
        free(cands);
        free(kept);
        cands = malloc((n ? n : 1) * sizeof *cands);
        kept = malloc((size_t)maxdet * sizeof *kept);
        if (!cands || !kept) {
            rc = mt_err_set(err, MT_ENOMEM, "face_detect: out of memory");
            goto done;
        }
        size_t nc = 0, nk = 0;
        for (size_t j = 0; j < n; j++) {
            double s = sc[j * c + (size_t)cls];
            if (s >= sth) { /* NaN never passes */
                for (int q = 0; q < 4; q++)
                    if (!isfinite(bx[j * 4 + (size_t)q])) {
                        rc = mt_err_set(err, MT_EINVAL,
                                        "face_detect: image slot '%s': the model produced a "
                                        "non-finite box",
                                        t.images[i]->slot);
                        goto done;
                    }
                cands[nc++] = (cand){s, j};
            }
        }
        qsort(cands, nc, sizeof *cands, cand_cmp);
        for (size_t a = 0; a < nc && nk < (size_t)maxdet; a++) {
            bool keep = true;
            for (size_t q = 0; q < nk && keep; q++)
                keep = box_iou(bx + cands[a].idx * 4, bx + cands[kept[q]].idx * 4) <= ith;
            if (keep)
                kept[nk++] = a;
        }
        /* kept[] holds candidate positions; turn them into rows */
        json_t *one = json_object(), *dets = json_array();
        if (!one || !dets || json_array_append_new(arr, one) ||
            json_object_set_new(one, "image", json_string(t.images[i]->slot)) ||
            json_object_set_new(one, "width", json_integer(iw)) ||
            json_object_set_new(one, "height", json_integer(ih)) ||
            json_object_set_new(one, "detections", dets)) {
            json_decref(dets);
            rc = mt_err_set(err, MT_ENOMEM, "face_detect: out of memory");
            goto done;
        }
        for (size_t q = 0; q < nk; q++) {
            const cand *cd = &cands[kept[q]];
            const float *b = bx + cd->idx * 4;
            double nb[4] = {clamp01(b[0]), clamp01(b[1]), clamp01(b[2]), clamp01(b[3])};
            double px[4] = {nb[0] * iw, nb[1] * ih, nb[2] * iw, nb[3] * ih};
            if (t.json) {
                json_t *e = json_pack("{s:f,s:[f,f,f,f],s:[f,f,f,f]}", "score", cd->score, "box",
                                      nb[0], nb[1], nb[2], nb[3], "box_px", px[0], px[1], px[2],
                                      px[3]);
                if (!e || json_array_append_new(dets, e)) {
                    rc = mt_err_set(err, MT_ENOMEM, "face_detect: out of memory");
                    goto done;
                }
                continue;
            }
            mt_sbuf_csv_field(&csv, t.images[i]->slot, strlen(t.images[i]->slot));
            mt_sbuf_printf(&csv, ",%.9g,%.9g,%.9g,%.9g,%.9g,%.2f,%.2f,%.2f,%.2f\n", cd->score,
                           nb[0], nb[1], nb[2], nb[3], px[0], px[1], px[2], px[3]);
        }
    }
    if ((rc = write_result(&t, &csv, js, err)) != MT_OK)
        goto done;
    mt_bctx_log(ctx, "face_detect: %zu images, input %lldx%lld, %zu nodes, %lld threads",
                t.n_images, (long long)t.height, (long long)t.width, mt_nn_num_nodes(t.m),
                (long long)t.threads);
    char r[64];
    /* the count of detections is the data owner's: only in its output */
    snprintf(r, sizeof r, "images: %zu", t.n_images);
    *ret = strdup(r);
    if (!*ret)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
done:
    json_decref(js);
    mt_sbuf_free(&csv);
    free(cands);
    free(kept);
    task_close(&t);
    return rc;
}
