;; binrec (hostile): binary recursion of depth 62 (2^62 calls), no loop.
(module
  (memory (export "memory") 1)
  (func $r (param i32)
    (if (local.get 0)
      (then
        (call $r (i32.sub (local.get 0) (i32.const 1)))
        (call $r (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "docex_run") (result i32)
    (call $r (i32.const 62))
    (i32.const 0)))
