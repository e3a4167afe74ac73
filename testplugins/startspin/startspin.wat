;; startspin (hostile): the module's start function never returns.
(module
  (memory (export "memory") 1)
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "docex_run") (result i32) (i32.const 0)))
