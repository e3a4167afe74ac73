;; membomb (hostile): grows memory 1 MiB at a time until refused, then traps
;; (like a Go guest's "fatal error: out of memory").
(module
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32)
    (loop $l
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
      (br $l))
    (i32.const 0)))
