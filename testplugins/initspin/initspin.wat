;; initspin (hostile): _initialize recurses without a loop for ever (2^62 calls).
(module
  (memory (export "memory") 1)
  (func $r (param i32)
    (if (local.get 0)
      (then
        (call $r (i32.sub (local.get 0) (i32.const 1)))
        (call $r (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "_initialize") (call $r (i32.const 62)))
  (func (export "docex_run") (result i32) (i32.const 0)))
