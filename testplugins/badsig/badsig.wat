;; badsig (hostile): imports docex.log with the wrong signature, and env.system.
(module
  (import "docex" "log" (func $log (param i64) (result i32)))
  (import "env" "system" (func $system (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32) (call $log (i64.const 0))))
