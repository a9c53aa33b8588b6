;; it_keystore_wasm: a wasm function that signs the whole of its input "data"
;; (at most 60,000 bytes) with the KeyStore key that the task argument
;; wasm_key names (host function mesatee.key_sign, docs/wasm-functions.md)
;; and writes the raw signature to its output "sig". When key_sign fails it
;; logs "key_sign returned -N" and traps: the task fails, nothing is written.
;; Built at test time with wabt's wat2wasm (scripts/install-deps).
(module
  (import "mesatee" "input_open" (func $iopen (param i32 i32) (result i32)))
  (import "mesatee" "input_read" (func $iread (param i32 i32 i32) (result i32)))
  (import "mesatee" "key_sign" (func $sign (param i32 i32 i32 i32) (result i32)))
  (import "mesatee" "output_open" (func $oopen (param i32 i32) (result i32)))
  (import "mesatee" "output_write" (func $owrite (param i32 i32 i32) (result i32)))
  (import "mesatee" "set_result" (func $res (param i32 i32) (result i32)))
  (import "mesatee" "log" (func $log (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "data")
  (data (i32.const 8) "sig")
  (data (i32.const 16) "signed")
  (data (i32.const 32) "key_sign returned -?")
  (func (export "_start") (local $h i32) (local $n i32) (local $len i32) (local $s i32)
    (local.set $h (call $iopen (i32.const 0) (i32.const 4)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then unreachable))
    (block $done
      (loop $rd
        (local.set $n (call $iread (local.get $h)
                        (i32.add (i32.const 4096) (local.get $len))
                        (i32.sub (i32.const 60000) (local.get $len))))
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (local.set $len (i32.add (local.get $len) (local.get $n)))
        (br $rd)))
    (local.set $s (call $sign (i32.const 4096) (local.get $len) (i32.const 65536) (i32.const 1024)))
    (if (i32.lt_s (local.get $s) (i32.const 0))
      (then
        (i32.store8 (i32.const 51) (i32.sub (i32.const 48) (local.get $s)))
        (call $log (i32.const 32) (i32.const 20))
        unreachable))
    (drop (call $owrite (call $oopen (i32.const 8) (i32.const 3)) (i32.const 65536) (local.get $s)))
    (drop (call $res (i32.const 16) (i32.const 6)))))
