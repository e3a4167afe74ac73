;; badvalidatename (hostile): exports docex_run_lines with its
;; docex_validate_lines taking nothing and returning nothing. The sandbox
;; checks every docex_validate_* export's signature when it loads a module,
;; whichever entry the manifest names.
(module
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32) (i32.const 0))
  (func (export "docex_run_lines") (result i32) (i32.const 0))
  (func (export "docex_validate_lines")))
