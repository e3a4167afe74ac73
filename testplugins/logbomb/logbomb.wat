;; logbomb (hostile): one 16 MiB log call. Only max_log_bytes may be copied
;; (issue 7, defect 3: the whole message was copied, +110 MiB RSS).
(module
  (import "docex" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 257)
  (func (export "docex_run") (result i32)
    (memory.fill (i32.const 0) (i32.const 0x41) (i32.const 0x1000000))
    (drop (call $log (i32.const 1) (i32.const 0) (i32.const 0x1000000)))
    (i32.const 0)))
