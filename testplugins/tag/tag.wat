;; tag: sets metadata checked=true on its input. The minimal plugin of
;; docs/plugin-abi.md; the engine benchmarks run it against a bare write
;; transaction of the same output.
(module
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "checked")
  (data (i32.const 16) "btrue")
  (func (export "docex_run") (result i32)
    (call $set (i32.const 0) (i32.const 7) (i32.const 16) (i32.const 5))))
