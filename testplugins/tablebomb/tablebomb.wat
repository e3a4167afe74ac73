;; tablebomb (hostile): asks table.grow for 2^31 elements (16 GiB of host
;; memory if honoured). The sandbox caps tables, so the grow must fail (-1);
;; docex_run returns 0 only in that case.
(module
  (table 1 funcref)
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32)
    (i32.ne (table.grow 0 (ref.null func) (i32.const 0x7fffffff)) (i32.const -1))))
