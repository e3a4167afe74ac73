;; iovone (hostile): ONE WASI fd_write with 4,194,000 zero-length iovecs,
;; then return 0. The guest's own stop checks never run inside the host
;; call: it ran for 6 s past a 5 s timeout and returned success. The writer
;; now checks the deadline every 4,096 iovecs (ErrPluginTimeout).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 512)
  (func (export "docex_run") (result i32)
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 4194000) (i32.const 33554000)))
    (i32.const 0)))
