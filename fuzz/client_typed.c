/* Fuzz target: libmesatee's reader of the server's typed answers
 * (src/client/typed_decode.c), as a list page and as a single object of each
 * kind. Invariants a caller relies on: a refusal says why, adds nothing and
 * returns no cursor; an accepted item has every non-nullable string set, ids
 * of 32 hex characters and list lengths that match. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "typed_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_strv(char **v, size_t n)
{
    if (!v)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!v[i])
            abort();
    if (v[n])
        abort(); /* NULL-terminated */
}

static void check_item(mt_typed_kind k, const void *item)
{
    if (k == MT_TYPED_FILE) {
        const mesatee_file_info *f = item;
        if (!f->id || strlen(f->id) != 32 || !f->kind || !f->name || !f->url || !f->created_at ||
            !f->json || f->size < -1 || (f->sha256 && strlen(f->sha256) != 64))
            abort();
        check_strv(f->owners, f->n_owners);
    } else if (k == MT_TYPED_FUNCTION) {
        const mesatee_function_info *f = item;
        if (!f->id || strlen(f->id) != 32 || !f->owner || !f->name || !f->description ||
            !f->executor_type || !f->builtin || !f->created_at || !f->updated_at || !f->json)
            abort();
        check_strv(f->inputs, f->n_inputs);
        check_strv(f->outputs, f->n_outputs);
    } else {
        const mesatee_task_info *t = item;
        if (!t->id || strlen(t->id) != 32 || !t->function_id || strlen(t->function_id) != 32 ||
            !t->function_name || !t->creator || !t->status || !t->created_at || !t->updated_at ||
            !t->json)
            abort();
        check_strv(t->participants, t->n_participants);
        check_strv(t->approvals, t->n_approvals);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    for (int k = MT_TYPED_FILE; k <= MT_TYPED_TASK; k++) {
        char err[MT_TYPED_ERR_MAX];
        mt_typed_vec v = {0};
        char *cur = NULL;
        int st = mt_typed_decode_page((mt_typed_kind)k, json, size, &v, &cur, err);
        if (st != MESATEE_OK && (err[0] == '\0' || v.n != 0 || cur))
            abort();
        for (size_t i = 0; i < v.n; i++)
            check_item((mt_typed_kind)k, (const char *)v.items + i * mt_typed_item_size(k));
        if (cur && cur[0] == '\0')
            abort(); /* "" ends paging: never returned */
        free(cur);
        mt_typed_free((mt_typed_kind)k, v.items, v.n);

        void *one = NULL;
        st = mt_typed_decode_one((mt_typed_kind)k, json, size, &one, err);
        if ((st == MESATEE_OK) != (one != NULL) || (st != MESATEE_OK && err[0] == '\0'))
            abort();
        if (one)
            check_item((mt_typed_kind)k, one);
        mt_typed_free((mt_typed_kind)k, one, 1);
    }
    return 0;
}
