;; recurse (hostile): unbounded recursion; must end in a stack-overflow trap.
(module
  (memory (export "memory") 1)
  (func $r (param i64) (result i64)
    (i64.add (call $r (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
  (func (export "docex_run") (result i32)
    (i32.wrap_i64 (call $r (i64.const 0)))))
