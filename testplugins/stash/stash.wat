;; stash (hostile): keeps each input in memory and in a global, and emits
;; what the previous invocation left behind as "previous". Every invocation
;; must start from the state right after initialisation (issue 7, defect 5:
;; a deleted tenant's document reached the tenant re-created with its id,
;; and one basket's content reached a run on another basket), so "previous"
;; must never appear.
(module
  (import "docex" "content_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (import "docex" "emit" (func $emit (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 3)
  (global $len (mut i32) (i32.const 0))
  (data (i32.const 0) "previous")
  (data (i32.const 16) "text/plain")
  (func (export "docex_run") (result i32)
    (local $n i32)
    ;; what a previous invocation left: in the global, or in memory at 96
    (local.set $n (i32.or (global.get $len) (i32.load (i32.const 96))))
    (if (local.get $n)
      (then (drop (call $emit (i32.const 0) (i32.const 8) (i32.const 16) (i32.const 10)
        (i32.const 65536) (local.get $n)))))
    (local.set $n (call $read (i32.const 0) (i64.const 0) (i32.const 65536) (i32.const 65536)))
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then (global.set $len (local.get $n)) (i32.store (i32.const 96) (local.get $n))))
    (i32.const 0)))
