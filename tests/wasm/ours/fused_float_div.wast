;; Fused operand forms of float arithmetic, float comparisons and the
;; trapping integer divisions (WASM_FB_LIST 42..69): operands from locals (L),
;; constants (C) and the stack (S), results to the stack or a local (_D).
(module
  ;; f64: LL, LC, SL, SC and their _D forms
  (func (export "f64_ll") (param f64 f64) (result f64) local.get 0 local.get 1 f64.sub)
  (func (export "f64_lc") (param f64) (result f64) local.get 0 f64.const 0.5 f64.mul)
  (func (export "f64_sl") (param f64 f64) (result f64)
    local.get 0 local.get 0 f64.add local.get 1 f64.div)
  (func (export "f64_sc") (param f64 f64) (result f64)
    local.get 0 local.get 1 f64.mul f64.const 1.25 f64.add)
  (func (export "f64_d") (param f64 f64) (result f64) (local f64 f64 f64 f64)
    local.get 0 local.get 1 f64.add local.set 2            ;; LL_D
    local.get 2 f64.const 3 f64.mul local.set 3            ;; LC_D
    local.get 0 local.get 1 f64.mul local.get 3 f64.sub local.set 4  ;; SL_D
    local.get 4 local.get 4 f64.mul f64.const -2 f64.div local.set 5 ;; SC_D
    local.get 2 local.get 3 f64.add local.get 4 local.get 5 f64.mul f64.sub local.tee 2) ;; SS_D tee
  ;; f32
  (func (export "f32_mix") (param f32 f32) (result f32) (local f32)
    local.get 0 local.get 1 f32.mul local.set 2
    local.get 2 f32.const 0.25 f32.add local.get 1 f32.div local.get 0 f32.sub)
  (func (export "f32_lc") (param f32) (result f32) local.get 0 f32.const 1.5 f32.div)
  ;; NaN and infinities through the fused forms
  (func (export "f64_nan") (param f64) (result i32)
    local.get 0 f64.const 0 f64.div local.get 0 f64.const 0 f64.div f64.ne)
  ;; comparisons: result i32, to the stack and to a local
  (func (export "f64_cmp") (param f64 f64) (result i32) (local i32)
    local.get 0 local.get 1 f64.lt local.set 2
    local.get 2 i32.const 2 i32.mul
    local.get 0 f64.const 1 f64.ge i32.const 4 i32.mul i32.add
    local.get 0 local.get 1 f64.eq i32.const 8 i32.mul i32.add)
  (func (export "f32_cmp") (param f32 f32) (result i32)
    local.get 0 local.get 1 f32.le local.get 1 f32.const 0 f32.gt i32.const 2 i32.mul i32.add
    local.get 0 local.get 1 f32.ne i32.const 4 i32.mul i32.add)
  (func (export "f64_cmp_br") (param f64 f64) (result i32)
    (block (br_if 0 (f64.gt (local.get 0) (local.get 1))) (return (i32.const 1)))
    (i32.const 2))
  ;; divisions in every operand form, traps included
  (func (export "div_s_ll") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func (export "div_u_lc") (param i32) (result i32) local.get 0 i32.const 7 i32.div_u)
  (func (export "rem_s_lc0") (param i32) (result i32) local.get 0 i32.const 0 i32.rem_s)
  (func (export "rem_s_sl") (param i32 i32) (result i32)
    local.get 0 i32.const 1 i32.mul local.get 1 i32.rem_s)
  (func (export "rem_u_d") (param i32 i32) (result i32) (local i32)
    local.get 0 local.get 1 i32.rem_u local.set 2 local.get 2)
  (func (export "div_s_sc") (param i32) (result i32)
    local.get 0 i32.const 1 i32.add i32.const -1 i32.div_s)
  (func (export "div_s64_ll") (param i64 i64) (result i64) local.get 0 local.get 1 i64.div_s)
  (func (export "rem_s64_lc") (param i64) (result i64) local.get 0 i64.const -1 i64.rem_s)
  (func (export "div_u64_d") (param i64 i64) (result i64) (local i64)
    local.get 0 local.get 1 i64.div_u local.set 2 local.get 2 local.get 0 local.get 1 i64.rem_u i64.add)
  (func (export "div_s64_ss") (param i64 i64) (result i64) (local i64)
    local.get 0 i64.const 1 i64.mul local.get 1 i64.const 1 i64.mul i64.div_s local.set 2 local.get 2))
(assert_return (invoke "f64_ll" (f64.const 1.5) (f64.const 4)) (f64.const -2.5))
(assert_return (invoke "f64_lc" (f64.const 3)) (f64.const 1.5))
(assert_return (invoke "f64_sl" (f64.const 3) (f64.const 4)) (f64.const 1.5))
(assert_return (invoke "f64_sc" (f64.const 2) (f64.const 3)) (f64.const 7.25))
(assert_return (invoke "f64_d" (f64.const 1) (f64.const 2)) (f64.const -159.5))
(assert_return (invoke "f32_mix" (f32.const 2) (f32.const 4)) (f32.const 0.0625))
(assert_return (invoke "f32_lc" (f32.const 3)) (f32.const 2))
(assert_return (invoke "f32_lc" (f32.const nan)) (f32.const nan:arithmetic))
(assert_return (invoke "f64_lc" (f64.const -nan)) (f64.const nan:arithmetic))
(assert_return (invoke "f64_ll" (f64.const inf) (f64.const inf)) (f64.const nan:canonical))
(assert_return (invoke "f64_nan" (f64.const 0)) (i32.const 1))
(assert_return (invoke "f64_nan" (f64.const 1)) (i32.const 0))
(assert_return (invoke "f64_cmp" (f64.const 0.5) (f64.const 2)) (i32.const 2))
(assert_return (invoke "f64_cmp" (f64.const 2) (f64.const 2)) (i32.const 12))
(assert_return (invoke "f64_cmp" (f64.const nan) (f64.const 2)) (i32.const 0))
(assert_return (invoke "f32_cmp" (f32.const 1) (f32.const 2)) (i32.const 7))
(assert_return (invoke "f32_cmp" (f32.const nan) (f32.const -1)) (i32.const 4))
(assert_return (invoke "f64_cmp_br" (f64.const 3) (f64.const 2)) (i32.const 2))
(assert_return (invoke "f64_cmp_br" (f64.const 2) (f64.const 3)) (i32.const 1))
(assert_return (invoke "f64_cmp_br" (f64.const nan) (f64.const 3)) (i32.const 1))
(assert_return (invoke "div_s_ll" (i32.const -7) (i32.const 2)) (i32.const -3))
(assert_trap (invoke "div_s_ll" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_trap (invoke "div_s_ll" (i32.const 0x80000000) (i32.const -1)) "integer overflow")
(assert_return (invoke "div_u_lc" (i32.const -1)) (i32.const 613566756))
(assert_trap (invoke "rem_s_lc0" (i32.const 5)) "integer divide by zero")
(assert_return (invoke "rem_s_sl" (i32.const 0x80000000) (i32.const -1)) (i32.const 0))
(assert_return (invoke "rem_s_sl" (i32.const -7) (i32.const 3)) (i32.const -1))
(assert_trap (invoke "rem_s_sl" (i32.const 7) (i32.const 0)) "integer divide by zero")
(assert_return (invoke "rem_u_d" (i32.const -1) (i32.const 10)) (i32.const 5))
(assert_trap (invoke "rem_u_d" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_return (invoke "div_s_sc" (i32.const 5)) (i32.const -6))
(assert_trap (invoke "div_s_sc" (i32.const 0x7fffffff)) "integer overflow")
(assert_return (invoke "div_s64_ll" (i64.const -9) (i64.const 2)) (i64.const -4))
(assert_trap (invoke "div_s64_ll" (i64.const 0x8000000000000000) (i64.const -1)) "integer overflow")
(assert_trap (invoke "div_s64_ll" (i64.const 3) (i64.const 0)) "integer divide by zero")
(assert_return (invoke "rem_s64_lc" (i64.const 0x8000000000000000)) (i64.const 0))
(assert_return (invoke "div_u64_d" (i64.const -1) (i64.const 16)) (i64.const 0x100000000000000e))
(assert_trap (invoke "div_u64_d" (i64.const 1) (i64.const 0)) "integer divide by zero")
(assert_trap (invoke "div_s64_ss" (i64.const 0x8000000000000000) (i64.const -1)) "integer overflow")
(assert_return (invoke "div_s64_ss" (i64.const 100) (i64.const -7)) (i64.const -14))
