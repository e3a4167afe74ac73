;; badvalidate (hostile): exports docex_validate with a parameter.
(module
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32) (i32.const 0))
  (func (export "docex_validate") (param i32) (result i32) (local.get 0)))
