;; iovbomb (hostile): WASI fd_write with 4,194,000 zero-length iovecs (memory
;; is zero, so every iovec is (0,0)), in a loop. wazero calls the stdout
;; writer once per iovec: each call appended an empty log line (not counted
;; against max_log_bytes, and the fd_write is one host call): 4 million
;; lines, 748 MB and 6 s per call, past any timeout. Now an fd_write makes
;; at most one line, and no line when it writes no byte.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 512)
  (func (export "docex_run") (result i32)
    (loop $l
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 4194000) (i32.const 33554000)))
      (br $l))
    (i32.const 0)))
