;; importglobal (hostile): imports a global from "env" and a table from
;; "docex". The ABI allows only function imports; both must be refused at
;; load (issue 7, defect 6: they passed install).
(module
  (import "env" "g" (global $g i32))
  (import "docex" "t" (table 1 funcref))
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32) (global.get $g)))
