;; startwasi (hostile): the start function calls WASI random_get on 64 KiB
;; in a loop for ever. Initialisation's WASI calls count toward
;; max_host_calls (here 1000): it stops with ErrHostCallLimit. Before, they
;; were not counted, and the loop ran until Config.InitTimeout (sandbox
;; TestInitHostCalls).
(module
  (import "wasi_snapshot_preview1" "random_get" (func $rand (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $start
    (loop $l
      (drop (call $rand (i32.const 0) (i32.const 65536)))
      (br $l)))
  (start $start)
  (func (export "docex_run") (result i32) (i32.const 0)))
