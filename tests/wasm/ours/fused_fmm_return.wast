;; OP_FMM (two float loads, each `local.get x [i32.const k i32.add] fNN.load
;; off`, then f32/f64 add, sub, mul or div) and OP_RETURN_FP0 (a function's
;; one result written by the fused operation straight into slot 0 of the
;; frame): results, address wrap, traps of either load, sequences that must
;; not be fused (a block or loop between the loads), returns with values
;; below the result, a branch-targeted function end, recursion.
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
  ;; LOAD_L then LOAD_LK: mem[a + 8] * mem[b + 16]
  (func (export "mul64") (param i32 i32) (result f64)
    local.get 0 f64.load offset=8 local.get 1 i32.const 16 i32.add f64.load f64.mul)
  ;; LOAD_LK then LOAD_L, both with offsets
  (func (export "sub64") (param i32 i32) (result f64)
    local.get 0 i32.const 8 i32.add f64.load offset=8 local.get 1 f64.load offset=24 f64.sub)
  (func (export "add64") (param i32 i32) (result f64)
    local.get 0 f64.load local.get 1 f64.load f64.add)
  (func (export "div64") (param i32 i32) (result f64)
    local.get 0 i32.const 16 i32.add f64.load local.get 1 i32.const 24 i32.add f64.load f64.div)
  (func (export "add32") (param i32) (result f32)
    local.get 0 f32.load offset=32 local.get 0 i32.const 4 i32.add f32.load offset=32 f32.add)
  (func (export "sub32") (param i32) (result f32)
    local.get 0 f32.load offset=32 local.get 0 i32.const 8 i32.add f32.load offset=32 f32.sub)
  (func (export "mul32") (param i32) (result f32)
    local.get 0 f32.load offset=40 local.get 0 f32.load offset=44 f32.mul)
  (func (export "div32") (param i32 i32) (result f32)
    local.get 0 f32.load local.get 1 f32.load f32.div)
  ;; the product kept on the stack under later values, and accumulated
  (func (export "dot2") (param i32) (result f64) (local f64)
    local.get 0 f64.load local.get 0 f64.load offset=8 f64.mul
    local.get 0 f64.load offset=16 local.get 0 f64.load offset=24 f64.mul
    local.get 1 f64.add f64.add local.set 1 local.get 1)
  ;; not fusable: a block, a loop, a nop, an unrelated load between
  (func (export "blk") (param i32 i32) (result f64)
    local.get 0 f64.load (block (result f64) local.get 1 f64.load) f64.mul)
  (func (export "lp") (param i32 i32) (result f64)
    local.get 0 f64.load (loop (result f64) local.get 1 f64.load) f64.mul)
  (func (export "nop") (param i32 i32) (result f64)
    local.get 0 f64.load nop local.get 1 f64.load f64.mul)
  (func (export "lla") (param i32 i32) (result f64)
    local.get 0 f64.load local.get 0 local.get 1 i32.add f64.load f64.mul)
  (func (export "three") (param i32) (result f64)
    local.get 0 f64.load local.get 0 f64.load offset=8 local.get 0 f64.load offset=16
    f64.mul f64.add)

  ;; OP_RETURN_FP0
  (func (export "ret_extra") (result i32) (local i32 i32)
    i32.const 5 local.get 0 i32.const 3 i32.add return)
  (func (export "ret_noloc") (result i32) i32.const 1 i32.const 2 i32.add)
  (func (export "ret_noloc2") (result i64) i64.const 7 i64.const 1 i64.const 2 i64.add i64.mul)
  (func (export "ret_targeted") (param i32) (result i32)
    (block (br_if 1 (i32.const 7) (local.get 0)) drop) local.get 0 i32.const 1 i32.add)
  (func (export "ret_load") (param i32) (result i32) local.get 0 i32.load offset=8)
  (func (export "ret_loadf") (param i32) (result f64) local.get 0 f64.load offset=16)
  (func (export "ret_nested") (param i32) (result i32)
    (block (block (if (local.get 0) (then local.get 0 i32.const 10 i32.mul return))))
    i32.const -1)
  (func (export "ret_f64") (param f64 f64) (result f64) local.get 0 local.get 1 f64.div)
  (func (export "ret_div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func $sq (param i32) (result i32) local.get 0 local.get 0 i32.mul)
  (func (export "callsum") (result i32) i32.const 100 i32.const 3 call $sq i32.add)
  (func $fib (export "fib") (param i32) (result i32)
    (if (i32.lt_u (local.get 0) (i32.const 2)) (then (return (local.get 0))))
    local.get 0 i32.const 1 i32.sub call $fib
    local.get 0 i32.const 2 i32.sub call $fib i32.add return)
  (func $dot (param i32) (result f64)
    local.get 0 f64.load local.get 0 f64.load offset=8 f64.mul)
  (func (export "calldot") (param i32) (result f64)
    f64.const 10 local.get 0 call $dot f64.add))

(assert_return (invoke "mul64" (i32.const 0) (i32.const 0)) (f64.const 6))
(assert_return (invoke "mul64" (i32.const 0) (i32.const 0xfffffff0)) (f64.const 3))
(assert_return (invoke "mul64" (i32.const 8) (i32.const 65512)) (f64.const 0))
(assert_trap (invoke "mul64" (i32.const 0xfffffff8) (i32.const 0)) "out of bounds memory access")
(assert_trap (invoke "mul64" (i32.const 0) (i32.const 65513)) "out of bounds memory access")
(assert_trap (invoke "mul64" (i32.const 65529) (i32.const 65513)) "out of bounds memory access")
(assert_return (invoke "sub64" (i32.const 0) (i32.const 0)) (f64.const 2.75))
(assert_return (invoke "sub64" (i32.const 0xfffffff8) (i32.const 0)) (f64.const 1.75))
(assert_trap (invoke "sub64" (i32.const 0) (i32.const 0xffffffff)) "out of bounds memory access")
(assert_return (invoke "add64" (i32.const 0) (i32.const 24)) (f64.const 1.75))
(assert_return (invoke "div64" (i32.const 0) (i32.const 0)) (f64.const 12))
(assert_return (invoke "div64" (i32.const 1000) (i32.const 2000)) (f64.const nan:arithmetic))
(assert_trap (invoke "div64" (i32.const 65520) (i32.const 0)) "out of bounds memory access")
(assert_return (invoke "add32" (i32.const 0)) (f32.const 3.5))
(assert_return (invoke "sub32" (i32.const 0)) (f32.const -1.5))
(assert_return (invoke "mul32" (i32.const 0)) (f32.const 0.75))
(assert_return (invoke "div32" (i32.const 40) (i32.const 44)) (f32.const 12))
(assert_return (invoke "div32" (i32.const 40) (i32.const 1000)) (f32.const inf))
(assert_trap (invoke "div32" (i32.const 65533) (i32.const 0)) "out of bounds memory access")
(assert_return (invoke "dot2" (i32.const 0)) (f64.const 3.75))
(assert_return (invoke "blk" (i32.const 8) (i32.const 16)) (f64.const 6))
(assert_return (invoke "lp" (i32.const 8) (i32.const 16)) (f64.const 6))
(assert_return (invoke "nop" (i32.const 8) (i32.const 16)) (f64.const 6))
(assert_return (invoke "lla" (i32.const 8) (i32.const 8)) (f64.const 6))
(assert_return (invoke "three" (i32.const 0)) (f64.const 7.5))
(assert_trap (invoke "three" (i32.const 65520)) "out of bounds memory access")
(assert_return (invoke "ret_extra") (i32.const 3))
(assert_return (invoke "ret_noloc") (i32.const 3))
(assert_return (invoke "ret_noloc2") (i64.const 21))
(assert_return (invoke "ret_targeted" (i32.const 1)) (i32.const 7))
(assert_return (invoke "ret_targeted" (i32.const 0)) (i32.const 1))
(assert_return (invoke "ret_load" (i32.const 0)) (i32.const 0))
(assert_return (invoke "ret_load" (i32.const 4)) (i32.const 0x40000000))
(assert_trap (invoke "ret_load" (i32.const 65526)) "out of bounds memory access")
(assert_return (invoke "ret_loadf" (i32.const 8)) (f64.const 0.25))
(assert_return (invoke "ret_nested" (i32.const 3)) (i32.const 30))
(assert_return (invoke "ret_nested" (i32.const 0)) (i32.const -1))
(assert_return (invoke "ret_f64" (f64.const 1) (f64.const 4)) (f64.const 0.25))
(assert_return (invoke "ret_div" (i32.const -9) (i32.const 2)) (i32.const -4))
(assert_trap (invoke "ret_div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_return (invoke "callsum") (i32.const 109))
(assert_return (invoke "fib" (i32.const 15)) (i32.const 610))
(assert_return (invoke "calldot" (i32.const 0)) (f64.const 13))

;; WASM_G2_LIST: `local.get b; OP1; OP2` on floats, to the stack, to a local
;; (local.set / local.tee) and as a return value; operand order kept.
(module
  (func (export "g2_add") (param f64 f64 f64) (result f64) (local f64)
    local.get 0 local.get 1 local.get 2 f64.add f64.add local.set 3 local.get 3)
  (func (export "g2_mul") (param f64 f64 f64) (result f64)
    local.get 0 local.get 1 local.get 2 f64.mul f64.add f64.const 1 f64.mul)
  (func (export "g2_ret") (param f32 f32 f32) (result f32)
    local.get 0 local.get 1 local.get 2 f32.mul f32.add)
  (func (export "g2_tee") (param f32 f32 f32) (result f32) (local f32)
    local.get 0 local.get 1 local.get 2 f32.add f32.add local.tee 3 local.get 3 f32.add)
  (func (export "g2_acc") (param f64 i32) (result f64) (local f64)
    (loop
      local.get 0 local.get 0 f64.mul local.get 0 f64.const 2 f64.mul local.get 2 f64.add f64.add
      local.set 2
      local.get 1 i32.const -1 i32.add local.tee 1 br_if 0)
    local.get 2)
  (func (export "g2_round") (param f64 f64 f64) (result f64)
    local.get 0 local.get 1 local.get 2 f64.add f64.add))
(assert_return (invoke "g2_add" (f64.const 1) (f64.const 2) (f64.const 4)) (f64.const 7))
(assert_return (invoke "g2_mul" (f64.const 1) (f64.const 2) (f64.const 4)) (f64.const 9))
(assert_return (invoke "g2_ret" (f32.const 0.5) (f32.const 3) (f32.const 0.25)) (f32.const 1.25))
(assert_return (invoke "g2_tee" (f32.const 1) (f32.const 2) (f32.const 3)) (f32.const 12))
(assert_return (invoke "g2_acc" (f64.const 1.5) (i32.const 4)) (f64.const 21))
(assert_return (invoke "g2_round" (f64.const 1) (f64.const 0x1p53) (f64.const 1)) (f64.const 0x1p53))
(assert_return (invoke "g2_round" (f64.const 0x1p53) (f64.const 1) (f64.const 1)) (f64.const 0x1.0000000000001p53))
(assert_return (invoke "g2_add" (f64.const nan) (f64.const 2) (f64.const 4)) (f64.const nan:arithmetic))

;; UNL / UNLD: a unary operation or conversion that cannot trap, of a local,
;; to the stack, to a local (set and tee) and as the return value.
(module
  (func (export "cvt_u") (param i32) (result f64) local.get 0 f64.convert_i32_u)
  (func (export "cvt_s_d") (param i32) (result f64) (local f64)
    local.get 0 f64.convert_i32_s local.set 1 local.get 1 f64.const 0.5 f64.add)
  (func (export "wrap_tee") (param i64) (result i32) (local i32)
    local.get 0 i32.wrap_i64 local.tee 1 local.get 1 i32.add)
  (func (export "ext8") (param i32) (result i32) local.get 0 i32.extend8_s)
  (func (export "ext_s") (param i32) (result i64) (local i64)
    local.get 0 i64.extend_i32_s local.set 1 local.get 1)
  (func (export "clz_pop") (param i32) (result i32)
    local.get 0 i32.clz local.get 0 i32.popcnt i32.const 100 i32.mul i32.add)
  (func (export "sqrt32") (param f32) (result f32) local.get 0 f32.sqrt)
  (func (export "neg64") (param f64) (result f64) (local f64)
    local.get 0 f64.neg local.set 1 local.get 1)
  (func (export "nearest") (param f64) (result f64) local.get 0 f64.nearest)
  (func (export "promote") (param f32) (result f64) local.get 0 f64.promote_f32)
  (func (export "demote") (param f64) (result f32) local.get 0 f32.demote_f64)
  (func (export "reinterp") (param f64) (result i64) local.get 0 i64.reinterpret_f64)
  (func (export "eqz64") (param i64) (result i32) (local i32)
    local.get 0 i64.eqz local.set 1 local.get 1 i32.const 2 i32.mul)
  (func (export "cvt_i64") (param i64) (result f32) local.get 0 f32.convert_i64_u))
(assert_return (invoke "cvt_u" (i32.const -1)) (f64.const 4294967295))
(assert_return (invoke "cvt_s_d" (i32.const -3)) (f64.const -2.5))
(assert_return (invoke "wrap_tee" (i64.const 0x100000007)) (i32.const 14))
(assert_return (invoke "ext8" (i32.const 0x1ff)) (i32.const -1))
(assert_return (invoke "ext_s" (i32.const -2)) (i64.const -2))
(assert_return (invoke "clz_pop" (i32.const 0xff)) (i32.const 824))
(assert_return (invoke "sqrt32" (f32.const 6.25)) (f32.const 2.5))
(assert_return (invoke "sqrt32" (f32.const -1)) (f32.const nan:canonical))
(assert_return (invoke "neg64" (f64.const 0)) (f64.const -0))
(assert_return (invoke "neg64" (f64.const -nan:0x4)) (f64.const nan:0x4))
(assert_return (invoke "nearest" (f64.const 2.5)) (f64.const 2))
(assert_return (invoke "promote" (f32.const 1.5)) (f64.const 1.5))
(assert_return (invoke "demote" (f64.const 0x1.fffffffp0)) (f32.const 2))
(assert_return (invoke "reinterp" (f64.const -0)) (i64.const 0x8000000000000000))
(assert_return (invoke "eqz64" (i64.const 0)) (i32.const 2))
(assert_return (invoke "eqz64" (i64.const 5)) (i32.const 0))
(assert_return (invoke "cvt_i64" (i64.const -1)) (f32.const 0x1p64))

;; `const 0; local.set d` in the entry block on a declared local not yet
;; written is dropped (the call zeroed it); kept for parameters, after a
;; write, for -0.0, in later blocks, and with tee.
(module
  (func (export "z_plain") (param i32) (result i32) (local i32 i64)
    i32.const 0 local.set 1 i64.const 0 local.set 2
    local.get 1 local.get 0 i32.add local.get 2 i32.wrap_i64 i32.add)
  (func (export "z_param") (param i32) (result i32) i32.const 0 local.set 0 local.get 0)
  (func (export "z_after") (result i32) (local i32)
    i32.const 5 local.set 0 i32.const 0 local.set 0 local.get 0)
  (func (export "z_negzero") (result f64) (local f64)
    f64.const -0 local.set 0 local.get 0)
  (func (export "z_loop") (param i32) (result i32) (local i32 i32)
    (loop
      local.get 1 i32.const 3 i32.add local.set 1
      i32.const 0 local.set 2
      local.get 2 local.get 1 i32.add local.set 2
      local.get 0 i32.const -1 i32.add local.tee 0 br_if 0)
    local.get 1 local.get 2 i32.add)
  (func (export "z_tee") (result i32) (local i32) i32.const 0 local.tee 0 local.get 0 i32.add)
  (func $rec (export "z_rec") (param i32) (result i32) (local i32)
    i32.const 0 local.set 1
    (if (local.get 0)
      (then local.get 0 i32.const -1 i32.add call $rec local.set 1
            local.get 1 local.get 0 i32.add local.set 1))
    local.get 1))
(assert_return (invoke "z_plain" (i32.const 7)) (i32.const 7))
(assert_return (invoke "z_plain" (i32.const 9)) (i32.const 9))
(assert_return (invoke "z_param" (i32.const 7)) (i32.const 0))
(assert_return (invoke "z_after") (i32.const 0))
(assert_return (invoke "z_negzero") (f64.const -0))
(assert_return (invoke "z_loop" (i32.const 4)) (i32.const 24))
(assert_return (invoke "z_tee") (i32.const 0))
(assert_return (invoke "z_rec" (i32.const 10)) (i32.const 55))
(assert_return (invoke "z_rec" (i32.const 3)) (i32.const 6))

;; The fall-through of a br_if continues the entry block: `const 0; local.set
;; d` there is dropped while d is still zero (also a second time), kept after
;; d was written with anything else, before or after the br_if; not in the
;; branch target's block.
(module
  (func (export "zb_plain") (param i32) (result i32) (local i32)
    i32.const 0 local.set 1
    (block
      local.get 0 i32.eqz br_if 0
      i32.const 0 local.set 1
      local.get 1 local.get 0 i32.add local.set 1)
    local.get 1)
  (func (export "zb_before") (param i32) (result i32) (local i32)
    i32.const 7 local.set 1
    (block
      local.get 0 i32.eqz br_if 0
      i32.const 0 local.set 1)
    local.get 1)
  (func (export "zb_after") (param i32) (result i32) (local i32)
    (block
      local.get 0 i32.const 3 i32.lt_u br_if 0
      local.get 0 local.set 1
      local.get 0 i32.const 5 i32.lt_u br_if 0
      i32.const 0 local.set 1)
    local.get 1)
  (func (export "zb_target") (param i32) (result i32) (local i32)
    (block
      local.get 0 local.set 1
      local.get 0 br_if 0
      i32.const 9 local.set 1)
    i32.const 0 local.set 1
    local.get 1))
(assert_return (invoke "zb_plain" (i32.const 5)) (i32.const 5))
(assert_return (invoke "zb_plain" (i32.const 0)) (i32.const 0))
(assert_return (invoke "zb_before" (i32.const 5)) (i32.const 0))
(assert_return (invoke "zb_before" (i32.const 0)) (i32.const 7))
(assert_return (invoke "zb_after" (i32.const 2)) (i32.const 0))
(assert_return (invoke "zb_after" (i32.const 4)) (i32.const 4))
(assert_return (invoke "zb_after" (i32.const 6)) (i32.const 0))
(assert_return (invoke "zb_target" (i32.const 1)) (i32.const 0))
(assert_return (invoke "zb_target" (i32.const 0)) (i32.const 0))
