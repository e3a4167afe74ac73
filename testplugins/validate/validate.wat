;; validate: exports docex_validate (and docex_validate_named for the entry
;; docex_run_named), which checks the parameter "mode" by its first byte:
;; absent or "ok" accepted; "refuse" logs two lines and returns 1; "silent"
;; returns 7 without a word; "trap" traps; "loop" spins forever (the
;; instruction budget ends it); "emit" and "cstatus" call host functions
;; that validate may not use (they trap). docex_run sets validated_run=true.
;; docex_validate_named refuses everything.
(module
  (import "docex" "param_get" (func $param (param i32 i32 i32 i32) (result i32)))
  (import "docex" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "docex" "emit" (func $emit (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "docex" "set_status" (func $status (param i32 i32 i32) (result i32)))
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "mode")
  (data (i32.const 16) "mode: refused on purpose")
  (data (i32.const 48) "second line\n")
  (data (i32.const 64) "named: refused")
  (data (i32.const 80) "validated_run")
  (data (i32.const 96) "btrue")
  (data (i32.const 112) "text/plain")
  (func (export "docex_validate") (result i32)
    (local $n i32) (local $c i32)
    (local.set $n (call $param (i32.const 0) (i32.const 4) (i32.const 256) (i32.const 16)))
    (if (i32.lt_s (local.get $n) (i32.const 1)) (then (return (i32.const 0))))
    (local.set $c (i32.load8_u (i32.const 256)))
    (if (i32.eq (local.get $c) (i32.const 111)) (then (return (i32.const 0)))) ;; o
    (if (i32.eq (local.get $c) (i32.const 114)) ;; r
      (then
        (drop (call $log (i32.const 3) (i32.const 16) (i32.const 24)))
        (drop (call $log (i32.const 1) (i32.const 48) (i32.const 12)))
        (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 115)) (then (return (i32.const 7)))) ;; s
    (if (i32.eq (local.get $c) (i32.const 116)) (then (unreachable))) ;; t
    (if (i32.eq (local.get $c) (i32.const 108)) (then (loop $l (br $l)))) ;; l
    (if (i32.eq (local.get $c) (i32.const 101)) ;; e
      (then (return (call $emit (i32.const 0) (i32.const 4) (i32.const 112) (i32.const 10) (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 99)) ;; c
      (then (return (call $status (i32.const 1) (i32.const 0) (i32.const 4)))))
    (i32.const 1))
  (func (export "docex_validate_named") (result i32)
    (drop (call $log (i32.const 1) (i32.const 64) (i32.const 14)))
    (i32.const 1))
  (func $run (result i32)
    (call $set (i32.const 80) (i32.const 13) (i32.const 96) (i32.const 5)))
  (export "docex_run" (func $run))
  (export "docex_run_named" (func $run)))
