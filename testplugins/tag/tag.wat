;; tag: sets metadata tagged = true on its input (no content read). Used
;; by the pipeline tests as a metadata-only step.
(module
  (import "docex" "metadata_set" (func $mset (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "tagged")
  (data (i32.const 16) "btrue")
  (func (export "docex_run") (result i32)
    (call $mset (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 5))))
