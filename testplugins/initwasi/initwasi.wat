;; initwasi (hostile): _initialize writes one byte to stderr with WASI
;; fd_write in a loop for ever. Initialisation's WASI calls count toward
;; max_host_calls (here 1000): it stops with ErrHostCallLimit. Before, they
;; were not counted, and the loop ran until Config.InitTimeout (sandbox
;; TestInitHostCalls).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\10\00\00\00\01\00\00\00") ;; iovec {ptr=16, len=1}
  (data (i32.const 16) "x")
  (func (export "_initialize")
    (loop $l
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 32)))
      (br $l)))
  (func (export "docex_run") (result i32) (i32.const 0)))
