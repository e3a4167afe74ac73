;; loop (hostile): spins forever.
(module
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32)
    (loop $l (br $l))
    (i32.const 0)))
