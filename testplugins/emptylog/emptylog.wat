;; emptylog (hostile): log(1, 0, 0) in a loop. Empty lines cost nothing
;; against max_log_bytes, so every call kept a line until max_host_calls
;; (1.24 GB at 10 million calls). Each kept line now costs 64 bytes besides
;; its text.
(module
  (import "docex" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32)
    (loop $l
      (drop (call $log (i32.const 1) (i32.const 0) (i32.const 0)))
      (br $l))
    (i32.const 0)))
