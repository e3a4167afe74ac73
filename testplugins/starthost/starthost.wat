;; starthost (hostile): the start function calls docex.log. Host functions
;; are unavailable outside docex_run: it traps, and the error says
;; "plugin trapped" once (it said it twice).
(module
  (import "docex" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "from start")
  (func $start (drop (call $log (i32.const 1) (i32.const 0) (i32.const 10))))
  (start $start)
  (func (export "docex_run") (result i32) (i32.const 0)))
