;; OP_INCBRL (a loop counter's `local.get a; i32.const k; i32.add; local.tee d;
;; i32.const k2; CMP; br_if` back to the loop head), OP_FMMG2 (a two-load
;; multiply feeding `local.get b; OP1; OP2; local.set d`), OP_CALL_LC (`local.get
;; a; i32.const k; i32.add` as a call's last argument) and OP_RET_LL_ADD
;; (`local.get a; local.get b; i32.add` as the function's result): results for
;; each comparison, signed and unsigned wrap, the counter written, other
;; locals compared (not fused), argument order, traps of either load.
(module
  (memory 1)
  (func $init
    (f64.store (i32.const 0) (f64.const 1.5))
    (f64.store (i32.const 8) (f64.const 2))
    (f64.store (i32.const 16) (f64.const 3))
    (f64.store (i32.const 24) (f64.const 0.25))
    (f32.store (i32.const 32) (f32.const 1.5))
    (f32.store (i32.const 36) (f32.const 2))
    (f32.store (i32.const 40) (f32.const 3))
    (f32.store (i32.const 44) (f32.const 0.25)))
  (start $init)

  ;; ---- OP_INCBRL: iterations * 1000 + the counter's last value (low 16 bits)
  (func $count (param $i i32) (param $n i32) (result i32)
    local.get $n i32.const 1000 i32.mul local.get $i i32.const 0xFFFF i32.and i32.add)
  (func (export "ne") (param i32 i32) (result i32) (local i32)
    (loop
      local.get 2 i32.const 1 i32.add local.set 2
      local.get 0 local.get 1 i32.add local.tee 0 i32.const 12 i32.ne br_if 0)
    local.get 0 local.get 2 call $count)
  (func (export "eq") (param i32 i32) (result i32) (local i32)
    (block (loop
      local.get 2 i32.const 1 i32.add local.set 2
      local.get 0 local.get 1 i32.add local.set 0
      local.get 2 i32.const 5 i32.ge_u br_if 1
      local.get 0 i32.const 3 i32.add local.tee 0 i32.const 9 i32.eq br_if 0))
    local.get 0 local.get 2 call $count)
  (func (export "lt_s") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const 3 i32.add local.tee 0 i32.const 10 i32.lt_s br_if 0)
    local.get 0 local.get 1 call $count)
  (func (export "lt_u") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const 3 i32.add local.tee 0 i32.const 10 i32.lt_u br_if 0)
    local.get 0 local.get 1 call $count)
  (func (export "gt_s") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const -2 i32.add local.tee 0 i32.const 1 i32.gt_s br_if 0)
    local.get 0 local.get 1 call $count)
  (func (export "gt_u") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const -2 i32.add local.tee 0 i32.const 1 i32.gt_u br_if 0)
    local.get 0 local.get 1 call $count)
  (func (export "le_s") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const 4 i32.add local.tee 0 i32.const 10 i32.le_s br_if 0)
    local.get 0 local.get 1 call $count)
  (func (export "le_u") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const 4 i32.add local.tee 0 i32.const 10 i32.le_u br_if 0)
    local.get 0 local.get 1 call $count)
  (func (export "ge_s") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const -3 i32.add local.tee 0 i32.const 0 i32.ge_s br_if 0)
    local.get 0 local.get 1 call $count)
  (func (export "ge_u") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const -3 i32.add local.tee 0 i32.const 3 i32.ge_u br_if 0)
    local.get 0 local.get 1 call $count)
  ;; the sum to another local d, compared: d is the counter
  (func (export "other_d") (param i32) (result i32) (local i32 i32)
    (loop
      local.get 2 i32.const 1 i32.add local.set 2
      local.get 0 i32.const 2 i32.add local.tee 1 local.set 0
      local.get 1 i32.const 7 i32.lt_u br_if 0)
    local.get 0 local.get 2 call $count)
  ;; not fusable: the comparison reads another local than the one written
  (func (export "other_cmp") (param i32 i32) (result i32) (local i32)
    (loop
      local.get 2 i32.const 1 i32.add local.set 2
      local.get 0 i32.const 1 i32.add local.set 0
      local.get 1 i32.const 1 i32.add local.tee 1 drop
      local.get 0 i32.const 4 i32.lt_u br_if 0)
    local.get 1 local.get 2 call $count)
  ;; local.set then local.get of the same local: the same as the tee
  (func (export "set_get") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const 1 i32.add local.set 1
      local.get 0 i32.const 5 i32.add local.set 0 local.get 0 i32.const 20 i32.le_u br_if 0)
    local.get 0 local.get 1 call $count)

  ;; ---- OP_FMMG2: acc = x + (y OP1 acc), y a two-load product
  (func (export "dot64") (param i32) (result f64) (local f64 i32)
    f64.const 0.5 local.set 1
    (loop
      local.get 0 f64.load local.get 0 f64.load offset=8 f64.mul
      local.get 0 f64.load offset=16 local.get 0 i32.const 8 i32.add f64.load offset=16 f64.mul
      local.get 1 f64.add f64.add local.set 1
      local.get 2 i32.const 1 i32.add local.tee 2 i32.const 3 i32.ne br_if 0)
    local.get 1)
  (func (export "mul64") (param i32) (result f64) (local f64)
    f64.const 10 local.set 1
    f64.const 1
    local.get 0 f64.load local.get 0 f64.load offset=16 f64.mul
    local.get 1 f64.mul f64.add local.tee 1
    local.get 1 f64.add)
  (func (export "dot32") (param i32) (result f32) (local f32)
    f32.const 0.5 local.set 1
    local.get 0 f32.load offset=32 local.get 0 f32.load offset=36 f32.mul
    local.get 0 f32.load offset=40 local.get 0 i32.const 4 i32.add f32.load offset=40 f32.mul
    local.get 1 f32.add f32.add local.set 1
    local.get 1)
  (func (export "mul32") (param i32) (result f32) (local f32)
    f32.const 10 local.set 1
    f32.const 1
    local.get 0 f32.load offset=36 local.get 0 f32.load offset=40 f32.mul
    local.get 1 f32.mul f32.add local.set 1
    local.get 1)
  ;; a block, a nop between the product and the accumulation: not fused
  (func (export "dot64_blk") (param i32) (result f64) (local f64)
    f64.const 0.5 local.set 1
    local.get 0 f64.load local.get 0 f64.load offset=8 f64.mul
    local.get 0 f64.load offset=16 local.get 0 f64.load offset=24 f64.mul
    (block (param f64) (result f64) local.get 1 f64.add) f64.add local.set 1
    local.get 1)
  (func (export "dot64_nop") (param i32) (result f64) (local f64)
    f64.const 0.5 local.set 1
    local.get 0 f64.load local.get 0 f64.load offset=8 f64.mul
    local.get 0 f64.load offset=16 local.get 0 f64.load offset=24 f64.mul
    nop local.get 1 f64.add f64.add local.set 1
    local.get 1)

  ;; ---- OP_CALL_LC and OP_RET_LL_ADD
  (func $fib (export "fib") (param i32) (result i32) (local i32)
    (block
      local.get 0 i32.const 2 i32.lt_u br_if 0
      (loop
        local.get 0 i32.const -1 i32.add call $fib
        local.get 1 i32.add local.set 1
        local.get 0 i32.const -2 i32.add local.tee 0 i32.const 1 i32.gt_u br_if 0))
    local.get 0 local.get 1 i32.add)
  (func $pair (param i32 i32) (result i32)
    local.get 0 i32.const 1000 i32.mul local.get 1 i32.add)
  (func (export "args") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.const 7 i32.add call $pair)
  (func (export "args_wrap") (param i32) (result i32)
    i32.const 3 local.get 0 i32.const 1 i32.add call $pair)
  (func (export "ret_add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add)
  (func (export "ret_add_explicit") (param i32 i32) (result i32)
    (block local.get 0 br_if 0 local.get 1 local.get 1 i32.add return)
    local.get 0 local.get 1 i32.add return)
  (func (export "ret_add_nested") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.const 1 i32.add call $pair
    local.get 0 local.get 1 call $pair i32.sub)
  ;; OP_INC2BRL: a second `local.get a2; i32.const k2; i32.add; local.set d2`
  ;; right before the counter's step and test; in order: d2 from the old
  ;; counter, the counter from d2 (o2), from itself (i2)
  (func (export "inc2_order") (param i32) (result i32) (local i32)
    (loop
      local.get 0 i32.const 1 i32.add local.set 1
      local.get 1 i32.const 2 i32.add local.tee 0 i32.const 30 i32.lt_u br_if 0)
    local.get 0 local.get 1 i32.const 16 i32.shl i32.add)
  (func (export "inc2_self") (param i32) (result i32) (local i32)
    (loop
      local.get 1 i32.const -5 i32.add local.set 1
      local.get 0 i32.const 1 i32.add local.tee 0 i32.const 10 i32.ne br_if 0)
    local.get 1 local.get 0 call $count)
)
(assert_return (invoke "ne" (i32.const 0) (i32.const 3)) (i32.const 4012))
(assert_return (invoke "inc2_order" (i32.const 0)) (i32.const 1835038))
(assert_return (invoke "inc2_order" (i32.const 40)) (i32.const 2687019))
(assert_return (invoke "inc2_self" (i32.const 7)) (i32.const 75521))
(assert_return (invoke "inc2_self" (i32.const 9)) (i32.const 75531))
(assert_return (invoke "eq" (i32.const 1) (i32.const 5)) (i32.const 2017))
(assert_return (invoke "eq" (i32.const 0) (i32.const 0)) (i32.const 1003))
(assert_return (invoke "lt_s" (i32.const -5)) (i32.const 5010))
(assert_return (invoke "lt_s" (i32.const 100)) (i32.const 1103))
(assert_return (invoke "lt_u" (i32.const -5)) (i32.const 66534))
(assert_return (invoke "lt_u" (i32.const 0)) (i32.const 4012))
(assert_return (invoke "gt_s" (i32.const 9)) (i32.const 4001))
(assert_return (invoke "gt_s" (i32.const -7)) (i32.const 66527))
(assert_return (invoke "gt_u" (i32.const 9)) (i32.const 4001))
(assert_return (invoke "gt_u" (i32.const 4)) (i32.const 2000))
(assert_return (invoke "le_s" (i32.const 0)) (i32.const 3012))
(assert_return (invoke "le_s" (i32.const -9)) (i32.const 5011))
(assert_return (invoke "le_u" (i32.const 0)) (i32.const 3012))
(assert_return (invoke "le_u" (i32.const -9)) (i32.const 66531))
(assert_return (invoke "ge_s" (i32.const 8)) (i32.const 68535))
(assert_return (invoke "ge_s" (i32.const 2)) (i32.const 66535))
(assert_return (invoke "ge_u" (i32.const 8)) (i32.const 2002))
(assert_return (invoke "ge_u" (i32.const 3)) (i32.const 1000))
(assert_return (invoke "other_d" (i32.const 0)) (i32.const 4008))
(assert_return (invoke "other_cmp" (i32.const 0) (i32.const 10)) (i32.const 4014))
(assert_return (invoke "set_get" (i32.const 3)) (i32.const 4023))
(assert_return (invoke "dot64" (i32.const 0)) (f64.const 11.75))
(assert_return (invoke "mul64" (i32.const 0)) (f64.const 92))
(assert_return (invoke "dot32" (i32.const 0)) (f32.const 4.25))
(assert_return (invoke "mul32" (i32.const 0)) (f32.const 61))
(assert_return (invoke "dot64_blk" (i32.const 0)) (f64.const 4.25))
(assert_return (invoke "dot64_nop" (i32.const 0)) (f64.const 4.25))
(assert_trap (invoke "dot64" (i32.const 65520)) "out of bounds memory access")
(assert_trap (invoke "dot64" (i32.const 65512)) "out of bounds memory access")
(assert_trap (invoke "dot32" (i32.const 65496)) "out of bounds memory access")
(assert_trap (invoke "mul32" (i32.const -36)) "out of bounds memory access")
(assert_return (invoke "fib" (i32.const 0)) (i32.const 0))
(assert_return (invoke "fib" (i32.const 1)) (i32.const 1))
(assert_return (invoke "fib" (i32.const 2)) (i32.const 1))
(assert_return (invoke "fib" (i32.const 20)) (i32.const 6765))
(assert_return (invoke "args" (i32.const 3) (i32.const 4)) (i32.const 3011))
(assert_return (invoke "args_wrap" (i32.const -1)) (i32.const 3000))
(assert_return (invoke "args_wrap" (i32.const 41)) (i32.const 3042))
(assert_return (invoke "ret_add" (i32.const -1) (i32.const 2)) (i32.const 1))
(assert_return (invoke "ret_add" (i32.const 0x7fffffff) (i32.const 1)) (i32.const 0x80000000))
(assert_return (invoke "ret_add_explicit" (i32.const 0) (i32.const 21)) (i32.const 42))
(assert_return (invoke "ret_add_explicit" (i32.const 5) (i32.const 21)) (i32.const 26))
(assert_return (invoke "ret_add_nested" (i32.const 2) (i32.const 9)) (i32.const 1))
