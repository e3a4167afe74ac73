;; bigoutput (hostile): emits 1 MiB derived documents forever.
(module
  (import "docex" "emit" (func $emit (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 17)
  (data (i32.const 0) "big")
  (data (i32.const 16) "application/octet-stream")
  (func (export "docex_run") (result i32)
    (loop $l
      (drop (call $emit (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 24) (i32.const 65536) (i32.const 1048576)))
      (br $l))
    (i32.const 0)))
