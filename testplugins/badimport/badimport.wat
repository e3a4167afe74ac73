;; badimport (hostile): imports a host function that does not exist.
(module
  (import "docex" "format_disk" (func $f (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32) (call $f (i32.const 0))))
