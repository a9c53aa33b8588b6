/* Fuzz target for src/core/api_decode.c: the first byte picks the decoder,
 * the rest is the request body (or query string). Every decoder must either
 * accept (and then its struct must be consistent) or refuse with an error,
 * never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "api_page.h"
#include "core_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0] % 10;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    dec_limits lim = {1 << 16, 16};
    mt_err err;
    switch (which) {
    case 0: {
        dec_login d;
        if (dec_login_parse(b, n, &lim, &d, &err) == MT_OK && (!d.username || !d.password))
            abort();
        dec_login_free(&d);
        /* the password bodies (user lifecycle) share the login's inputs */
        for (int need_old = 0; need_old < 2; need_old++) {
            dec_password p;
            if (dec_password_parse(b, n, &lim, need_old, &p, &err) == MT_OK &&
                (!p.password || strlen(p.password) < 8 || (need_old && !p.old_password)))
                abort();
            dec_password_free(&p);
        }
        /* and so does the audit prune body (issue 9, retention) */
        dec_audit_prune ap;
        if (dec_audit_prune_parse(b, n, &lim, &ap, &err) == MT_OK &&
            (ap.before < 2 || ap.export_first < 1 || ap.export_last < ap.export_first ||
             strlen(ap.export_head) != 64))
            abort();
        break;
    }
    case 1: {
        dec_user_new d;
        if (dec_user_new_parse(b, n, &lim, &d, &err) == MT_OK && !dec_username_valid(d.username))
            abort();
        dec_user_new_free(&d);
        break;
    }
    case 2: {
        dec_input_new d;
        if (dec_input_new_parse(b, n, &lim, &d, &err) == MT_OK && !d.url)
            abort();
        dec_input_new_free(&d);
        break;
    }
    case 3: {
        dec_output_new d;
        dec_output_new_parse(b, n, &lim, &d, &err);
        dec_output_new_free(&d);
        break;
    }
    case 4: {
        dec_fusion_new d;
        if (dec_fusion_new_parse(b, n, &lim, &d, &err) == MT_OK && d.n_owners < 2)
            abort();
        dec_fusion_new_free(&d);
        break;
    }
    case 5:
    case 6: {
        dec_function *d = malloc(sizeof *d);
        if (!d)
            return 0;
        mt_status rc = which == 5 ? dec_function_parse(b, n, &lim, d, &err)
                                  : dec_function_update_parse(b, n, &lim, d, &err);
        if (rc == MT_OK) {
            json_t *a = dec_function_args_json(d);
            json_t *s = dec_function_slots_json(d->inputs, d->n_inputs);
            if (!a || !s)
                abort();
            json_decref(a);
            json_decref(s);
        }
        dec_function_free(d);
        free(d);
        break;
    }
    case 7: {
        dec_task_new *d = malloc(sizeof *d);
        if (!d)
            return 0;
        if (dec_task_new_parse(b, n, &lim, d, &err) == MT_OK && !d->arguments)
            abort();
        dec_task_new_free(d);
        free(d);
        break;
    }
    case 8: {
        dec_assign d;
        if (dec_assign_parse(b, n, &lim, &d, &err) == MT_OK && d.n_inputs + d.n_outputs == 0)
            abort();
        dec_assign_free(&d);
        break;
    }
    default: {
        dec_empty_body(b, n, &lim, &err);
        char *q = malloc(n + 1);
        if (!q)
            return 0;
        memcpy(q, b, n);
        q[n] = '\0';
        dec_audit_query a;
        dec_audit_query_parse(q, &a, &err);
        /* list paging (api_page.h): every list, accepted pages are sane */
        static const page_list lists[] = {PAGE_FILES, PAGE_FUNCTIONS, PAGE_TASKS, PAGE_USERS,
                                          PAGE_AUDIT};
        for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
            dec_page pg;
            if (dec_page_query_parse(q, lists[i], &pg, &err) == MT_OK &&
                (pg.limit < 1 || pg.limit > DEC_PAGE_MAX || pg.seq < 0 || pg.time < 0 ||
                 strnlen(pg.key, sizeof pg.key) == sizeof pg.key))
                abort();
        }
        /* GET /v1/tasks/{id}?wait= (issue 13, task_wait.c) */
        unsigned wait_ms;
        if (core_wait_query_parse(q, &wait_ms, &err) == MT_OK && wait_ms > CORE_WAIT_MAX_MS)
            abort();
        free(q);
        break;
    }
    }
    return 0;
}
