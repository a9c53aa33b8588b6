/* Tests of private_join_and_compute, psi_cardinality, ordered_set_intersect
 * and ordered_set_join through mt_executor_run and the real mesatee-worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_builtin_common.h"

static const char *const two_out[] = {"alice_out", "bob_out"};

static void test_pjc(void **state)
{
    tb_in in[3] = {
        {"alice", "id,value\nu1,10\nu2,20\nu3,5\nu1,1.5\n"},
        {"bob", "value,id\n3,u2\n4,u1\n100,u9\n"},
        {"carol", "id,value,other\nu1,0.25,x\n\"u2\",-1,y\nu4,7,z\n"},
    };
    tb_run run;
    tb_expect_ok("private_join_and_compute", NULL, in, 3, two_out, 2, &run);
    assert_string_equal(run.r.return_value, "intersection size: 2");
    assert_string_equal(run.out[0], "id,sum\nu1,15.75\nu2,22\n");
    assert_string_equal(run.out[1], run.out[0]);
    tb_run_clear(&run);

    tb_expect_ok("private_join_and_compute", tb_args("aggregate", "count", NULL), in, 3, two_out,
                 1, &run);
    assert_string_equal(run.out[0], "id,count\nu1,4\nu2,3\n");
    tb_run_clear(&run);
    tb_expect_ok("private_join_and_compute", tb_args("aggregate", "mean", NULL), in, 3, two_out,
                 1, &run);
    assert_string_equal(run.out[0], "id,mean\nu1,3.9375\nu2,7.333333333333333\n");
    tb_run_clear(&run);

    /* custom columns by name and by position; a party with no rows */
    tb_in in2[2] = {{"a", "k,x\n\"a,b\",1\nz,2\n"}, {"b", "x,k\n5,\"a,b\"\n"}};
    tb_expect_ok("private_join_and_compute", tb_args("id", "k", "value", "x", NULL), in2, 2,
                 two_out, 1, &run);
    assert_string_equal(run.out[0], "id,sum\n\"a,b\",6\n");
    tb_run_clear(&run);
    tb_in in3[2] = {{"a", "id,value\nq,1\n"}, {"b", "id,value\n"}};
    tb_expect_ok("private_join_and_compute", NULL, in3, 2, two_out, 1, &run);
    assert_string_equal(run.out[0], "id,sum\n");
    assert_string_equal(run.r.return_value, "intersection size: 0");
    tb_run_clear(&run);
}

static void test_pjc_bad(void **state)
{
    tb_in bad_num[2] = {{"a", "id,value\nq,1\n"}, {"b", "id,value\nq,1\nr,x1\n"}};
    tb_expect_fail("private_join_and_compute", NULL, bad_num, 2, two_out, 2,
                   "input 'b', line 3, column 2: not a finite number");
    tb_in bad_cols[2] = {{"a", "id,value\nq,1\nr\n"}, {"b", "id,value\n"}};
    tb_expect_fail("private_join_and_compute", NULL, bad_cols, 2, two_out, 2,
                   "input 'a', line 3, column 2: expected 2 fields");
    tb_in no_col[2] = {{"a", "id,value\n"}, {"b", "ident,value\n"}};
    tb_expect_fail("private_join_and_compute", NULL, no_col, 2, two_out, 1,
                   "argument 'id': input 'b' has no column 'id'");
    tb_in empty[2] = {{"a", "id,value\nq,1\n"}, {"b", ""}};
    tb_expect_fail("private_join_and_compute", NULL, empty, 2, two_out, 1,
                   "input 'b', line 1, column 1: empty input");
    tb_in empty_id[2] = {{"a", "id,value\n,1\n"}, {"b", "id,value\n"}};
    tb_expect_fail("private_join_and_compute", NULL, empty_id, 2, two_out, 1,
                   "input 'a', line 2, column 1: empty id");
    tb_in ok[2] = {{"a", "id,value\nq,1\n"}, {"b", "id,value\nq,2\n"}};
    tb_expect_fail("private_join_and_compute", tb_args("aggregate", "max", NULL), ok, 2, two_out,
                   1, "argument 'aggregate': expected sum, count or mean");
    tb_expect_fail("private_join_and_compute", tb_args("colour", "red", NULL), ok, 2, two_out, 1,
                   "unknown argument 'colour'");
    tb_expect_fail("private_join_and_compute", NULL, ok, 1, two_out, 1,
                   "needs at least 2 input slots");
    /* a huge line */
    size_t n = 2u << 20;
    char *big = malloc(n + 32);
    strcpy(big, "id,value\nq,");
    memset(big + 11, '7', n);
    strcpy(big + 11 + n, "\n");
    tb_in huge[2] = {{"a", "id,value\nq,1\n"}, {"b", big}};
    tb_expect_fail("private_join_and_compute", NULL, huge, 2, two_out, 1,
                   "input 'b', line 2, column 2: record longer than 1048576 bytes");
    free(big);
}

static void test_psi_cardinality(void **state)
{
    tb_in in[3] = {{"a", "x\ny\nz\nw\n"}, {"b", "y\r\nz\r\nq\r\n"}, {"c", "z\ny\ny\n"}};
    tb_run run;
    tb_expect_ok("psi_cardinality", NULL, in, 3, NULL, 0, &run);
    assert_string_equal(run.r.return_value, "2");
    tb_run_clear(&run);
    tb_expect_fail("psi_cardinality", NULL, in, 2, two_out, 1, "declare no output slots");
    tb_expect_fail("psi_cardinality", NULL, in, 1, NULL, 0, "at least 2 input slots");
    tb_expect_fail("psi_cardinality", tb_args("x", "1", NULL), in, 2, NULL, 0,
                   "unknown argument 'x'");
}

static void test_ordered(void **state)
{
    /* slots deliberately given out of name order: pairing is by name */
    tb_in in[2] = {
        {"b_bank", "id,balance\nu1,100\nu3,300\nu5,500\n"},
        {"a_shop", "id,item,price\nu0,pen,1\nu1,\"ink, blue\",2\nu5,pad,3\nu7,cup,4\n"},
    };
    const char *const outs[] = {"y_bank_flags", "x_shop_flags"};
    tb_run run;
    tb_expect_ok("ordered_set_intersect", NULL, in, 2, outs, 2, &run);
    assert_string_equal(run.r.return_value, "intersection size: 2");
    assert_string_equal(run.out[1], "id,member\nu0,0\nu1,1\nu5,1\nu7,0\n");
    assert_string_equal(run.out[0], "id,member\nu1,1\nu3,0\nu5,1\n");
    tb_run_clear(&run);

    tb_expect_ok("ordered_set_join", NULL, in, 2, outs, 2, &run);
    assert_string_equal(run.r.return_value, "joined rows: 2");
    const char *want = "id,item,price,balance\nu1,\"ink, blue\",2,100\nu5,pad,3,500\n";
    assert_string_equal(run.out[0], want);
    assert_string_equal(run.out[1], want);
    tb_run_clear(&run);

    /* colliding column names are prefixed with the slot */
    tb_in in2[2] = {{"l", "key,v\na,1\nb,2\n"}, {"r", "v,key\n9,b\n"}};
    tb_expect_ok("ordered_set_join", tb_args("id", "key", NULL), in2, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "id,v,r.v\nb,2,9\n");
    tb_run_clear(&run);
}

static void test_ordered_bad(void **state)
{
    const char *const outs[] = {"o1", "o2", "o3"};
    tb_in unsorted[2] = {{"a", "id\nu1\nu3\nu2\n"}, {"b", "id\nu1\n"}};
    tb_expect_fail("ordered_set_intersect", NULL, unsorted, 2, outs, 1,
                   "input 'a', line 4, column 1: id not greater than the previous row's");
    tb_in dup[2] = {{"a", "id\nu1\n"}, {"b", "x,id\n1,u1\n2,u1\n"}};
    tb_expect_fail("ordered_set_join", NULL, dup, 2, outs, 1,
                   "input 'b', line 3, column 2: id not greater");
    tb_expect_fail("ordered_set_join", NULL, dup, 1, outs, 1, "exactly 2 input slots");
    tb_in ok[2] = {{"a", "id\nu1\n"}, {"b", "id\nu1\n"}};
    tb_expect_fail("ordered_set_intersect", NULL, ok, 2, outs, 3, "at most 2 output slots");
    tb_in quote[2] = {{"a", "id\nu1\n"}, {"b", "id\n\"u1\n"}};
    tb_expect_fail("ordered_set_intersect", NULL, quote, 2, outs, 2,
                   "input 'b', line 2, column 1: unterminated quoted field");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pjc, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_pjc_bad, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_psi_cardinality, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_ordered, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_ordered_bad, tb_setup, tb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
