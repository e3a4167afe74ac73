;; wasiflood (hostile): 20,000 WASI fd_write calls. WASI calls count toward
;; max_host_calls like docex calls (issue 7, defect 6: they counted 0).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\10\00\00\00\01\00\00\00") ;; iovec {ptr=16, len=1}
  (data (i32.const 16) "x")
  (func (export "docex_run") (result i32)
    (local $i i32)
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 20000))))
    (i32.const 0)))
