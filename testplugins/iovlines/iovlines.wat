;; iovlines: the iovecs of one fd_write make one log line (a UTF-8
;; character split across two iovecs stays one character); zero-length
;; iovecs and an fd_write of no byte make none; docex.log lines keep
;; their place between writes. Logs, in order: stdout "ab\u00e9c",
;; stderr "de", info "f", stdout "g".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "docex" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; text at 1024: a b C3 | A9 c d e f g
  (data (i32.const 1024) "ab\c3\a9cdefg")
  ;; iovecs at 0: {1024,3} {0,0} {1027,2}: "ab\xc3", "", "\xa9c"
  (data (i32.const 0) "\00\04\00\00\03\00\00\00\00\00\00\00\00\00\00\00\03\04\00\00\02\00\00\00")
  ;; iovecs at 32: {1029,1} {1030,1}: "d", "e"
  (data (i32.const 32) "\05\04\00\00\01\00\00\00\06\04\00\00\01\00\00\00")
  ;; iovec at 64: {1032,1}: "g"
  (data (i32.const 64) "\08\04\00\00\01\00\00\00")
  (func (export "docex_run") (result i32)
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 3) (i32.const 512)))
    (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 512))) ;; one empty iovec: no line
    (drop (call $w (i32.const 2) (i32.const 32) (i32.const 2) (i32.const 512)))
    (drop (call $log (i32.const 1) (i32.const 1031) (i32.const 1)))
    (drop (call $w (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 512)))
    (i32.const 0)))
