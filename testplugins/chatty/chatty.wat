;; chatty (hostile): logs in a tight loop (host call and log limits).
(module
  (import "docex" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "spam spam spam spam spam spam spam spam")
  (func (export "docex_run") (result i32)
    (loop $l
      (drop (call $log (i32.const 1) (i32.const 0) (i32.const 39)))
      (br $l))
    (i32.const 0)))
