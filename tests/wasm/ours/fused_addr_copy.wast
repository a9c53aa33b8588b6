;; Loads from (local + const) and (local + local) addresses (LOAD_LK,
;; LOAD_LLA): the i32.add wraps at 32 bits before the offset is added, as in
;; wasm; and runs of local.get; local.set pairs (COPY2).
(module (memory 1)
  (data (i32.const 0) "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10")
  (func (export "lk") (param i32) (result i32) local.get 0 i32.const 4 i32.add i32.load offset=2)
  (func (export "lk8s") (param i32) (result i32) local.get 0 i32.const -1 i32.add i32.load8_s)
  (func (export "lk64") (param i32) (result i64) local.get 0 i32.const 8 i32.add i64.load)
  (func (export "lkf64") (param i32) (result f64) local.get 0 i32.const 0 i32.add f64.load)
  (func (export "lla") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add i32.load16_u offset=1)
  (func (export "lla_set") (param i32 i32) (result i64) (local i64)
    local.get 0 local.get 1 i32.add i64.load32_s local.set 2 local.get 2)
  (func (export "rot") (param i32 i32 i32 i32) (result i32) (local i32)
    ;; rotate four locals through a fifth: copies run in pairs
    local.get 0 local.set 4 local.get 1 local.set 0 local.get 2 local.set 1
    local.get 3 local.set 2 local.get 4 local.set 3
    local.get 0 i32.const 1000 i32.mul local.get 1 i32.const 100 i32.mul i32.add
    local.get 2 i32.const 10 i32.mul i32.add local.get 3 i32.add)
  (func (export "swap_tee") (param i32 i32) (result i32) (local i32)
    ;; a tee between copies keeps its value on the stack
    local.get 0 local.set 2 local.get 1 local.tee 0 local.get 2 local.set 1
    local.get 1 i32.const 10 i32.mul i32.add local.get 0 i32.const 100 i32.mul i32.add))
(assert_return (invoke "lk" (i32.const 0)) (i32.const 0x0a090807))
(assert_return (invoke "lk" (i32.const 0xfffffffc)) (i32.const 0x06050403))
(assert_trap (invoke "lk" (i32.const 65530)) "out of bounds memory access")
(assert_trap (invoke "lk" (i32.const 0xfffffff0)) "out of bounds memory access")
(assert_return (invoke "lk8s" (i32.const 1)) (i32.const 1))
(assert_trap (invoke "lk8s" (i32.const 0)) "out of bounds memory access")
(assert_trap (invoke "lk8s" (i32.const 65537)) "out of bounds memory access")
(assert_return (invoke "lk64" (i32.const 0)) (i64.const 0x100f0e0d0c0b0a09))
(assert_return (invoke "lkf64" (i32.const 65528)) (f64.const 0))
(assert_trap (invoke "lkf64" (i32.const 65529)) "out of bounds memory access")
(assert_return (invoke "lla" (i32.const 2) (i32.const 3)) (i32.const 0x0807))
(assert_return (invoke "lla" (i32.const 0xffffffff) (i32.const 3)) (i32.const 0x0504))
(assert_trap (invoke "lla" (i32.const 65534) (i32.const 0)) "out of bounds memory access")
(assert_return (invoke "lla_set" (i32.const 12) (i32.const 0)) (i64.const 0x100f0e0d))
(assert_return (invoke "rot" (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4)) (i32.const 2341))
(assert_return (invoke "swap_tee" (i32.const 3) (i32.const 4)) (i32.const 434))
