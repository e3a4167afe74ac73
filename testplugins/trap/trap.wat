;; trap (hostile): prints a Go-style panic line to stderr, then traps.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\40\00\00\00\14\00\00\00") ;; iovec {ptr=64, len=20}
  (data (i32.const 64) "panic: boom at line\n")
  (func (export "docex_run") (result i32)
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
    unreachable))
