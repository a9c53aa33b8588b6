/* An external program built against an INSTALLED libmesatee (it_install.sh):
 * once with pkg-config, once with CMake find_package(mesatee). Only the
 * public header and library are used.
 *
 *   consumer                         prints the library version, makes a client
 *   consumer URL CA USER PASSFILE    logs in, prints the caller's files,
 *                                    functions and tasks via the typed calls,
 *                                    reads each back with *_get_info
 * Exit status 0 on success; 1 with a message on stderr otherwise. */
#include <mesatee.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(mesatee_client *c, const char *what, int st)
{
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, mesatee_client_errmsg(c),
            mesatee_status_name(st));
    return 1;
}

static void print_list(const char *label, char **v, size_t n)
{
    printf(" %s=", label);
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? "," : "", v[i]);
}

int main(int argc, char **argv)
{
    printf("version %s\n", mesatee_version());
    if (argc == 1) {
        mesatee_client *c = mesatee_client_new("https://127.0.0.1:1");
        if (!c)
            return die(NULL, "mesatee_client_new", MESATEE_EINVAL);
        mesatee_client_free(c);
        printf("client ok\n");
        return 0;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: consumer [URL CA USER PASSFILE]\n");
        return 2;
    }
    char pw[256] = "";
    FILE *f = fopen(argv[4], "r");
    if (!f || !fgets(pw, sizeof pw, f)) {
        fprintf(stderr, "consumer: cannot read %s\n", argv[4]);
        return 1;
    }
    fclose(f);
    pw[strcspn(pw, "\r\n")] = '\0';
    mesatee_client *c = mesatee_client_new(argv[1]);
    if (!c)
        return die(NULL, "mesatee_client_new", MESATEE_EINVAL);
    int st;
    if ((st = mesatee_client_set_ca_file(c, argv[2])) != MESATEE_OK ||
        (st = mesatee_login(c, argv[3], pw, NULL, NULL)) != MESATEE_OK)
        return die(c, "login", st);

    mesatee_file_info *fi = NULL;
    size_t nf = 0;
    if ((st = mesatee_file_list(c, &fi, &nf)) != MESATEE_OK)
        return die(c, "mesatee_file_list", st);
    printf("files %zu\n", nf);
    for (size_t i = 0; i < nf; i++) {
        printf("file %s %s %s", fi[i].id, fi[i].kind, fi[i].name);
        print_list("owners", fi[i].owners, fi[i].n_owners);
        printf(" written=%d size=%lld\n", fi[i].written, (long long)fi[i].size);
        mesatee_file_info *one = NULL;
        if ((st = mesatee_file_get_info(c, fi[i].id, &one)) != MESATEE_OK)
            return die(c, "mesatee_file_get_info", st);
        if (strcmp(one->id, fi[i].id) || strcmp(one->json, fi[i].json)) {
            fprintf(stderr, "consumer: file %s differs between list and get\n", fi[i].id);
            return 1;
        }
        mesatee_file_info_free(one, 1);
    }
    mesatee_file_info_free(fi, nf);

    mesatee_function_info *fn = NULL;
    size_t nfn = 0;
    if ((st = mesatee_function_list(c, &fn, &nfn)) != MESATEE_OK)
        return die(c, "mesatee_function_list", st);
    printf("functions %zu\n", nfn);
    for (size_t i = 0; i < nfn; i++) {
        printf("function %s %s %s %s public=%d", fn[i].id, fn[i].name, fn[i].executor_type,
               fn[i].builtin, fn[i].is_public);
        print_list("inputs", fn[i].inputs, fn[i].n_inputs);
        print_list("outputs", fn[i].outputs, fn[i].n_outputs);
        printf("\n");
        mesatee_function_info *one = NULL;
        if ((st = mesatee_function_get_info(c, fn[i].id, &one)) != MESATEE_OK)
            return die(c, "mesatee_function_get_info", st);
        if (strcmp(one->owner, fn[i].owner) || strcmp(one->name, fn[i].name)) {
            fprintf(stderr, "consumer: function %s differs between list and get\n", fn[i].id);
            return 1;
        }
        mesatee_function_info_free(one, 1);
    }
    mesatee_function_info_free(fn, nfn);

    mesatee_task_info *t = NULL;
    size_t nt = 0;
    if ((st = mesatee_task_list(c, &t, &nt)) != MESATEE_OK)
        return die(c, "mesatee_task_list", st);
    printf("tasks %zu\n", nt);
    for (size_t i = 0; i < nt; i++) {
        printf("task %s %s %s %s", t[i].id, t[i].status, t[i].function_id, t[i].creator);
        print_list("participants", t[i].participants, t[i].n_participants);
        print_list("approvals", t[i].approvals, t[i].n_approvals);
        printf(" failure=%s\n", t[i].failure_reason ? t[i].failure_reason : "-");
        mesatee_task_info *one = NULL;
        if ((st = mesatee_task_get_info(c, t[i].id, &one)) != MESATEE_OK)
            return die(c, "mesatee_task_get_info", st);
        if (strcmp(one->status, t[i].status) || strcmp(one->function_id, t[i].function_id)) {
            fprintf(stderr, "consumer: task %s differs between list and get\n", t[i].id);
            return 1;
        }
        mesatee_task_info_free(one, 1);
    }
    mesatee_task_info_free(t, nt);

    /* errors: a malformed id, an id that names nothing */
    mesatee_task_info *none = NULL;
    st = mesatee_task_get_info(c, "not-an-id", &none);
    printf("bad id -> %s\n", mesatee_status_name(st));
    mesatee_file_info *nofile = NULL;
    st = mesatee_file_get_info(c, "00000000000000000000000000000000", &nofile);
    printf("unknown id -> %s\n", mesatee_status_name(st));
    mesatee_client_free(c);
    return 0;
}
