;; badmeta (hostile): hands metadata_set and emit what the engine refuses.
;; Every such call must return EINVAL at once (issue 7, defect 6: they
;; returned 0 and the engine failed the whole run later). Returns the number
;; of the first bad call that was accepted, or 0.
(module
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "docex" "emit" (func $emit (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) " ")                  ;; blank key
  (data (i32.const 16) "a\e2\80\a8b")       ;; U+2028 in a key
  (data (i32.const 32) "sx")                ;; a valid value
  (data (i32.const 48) "n\c2\85")           ;; U+0085 in a name
  (data (i32.const 64) "text/plain")
  (data (i32.const 96) "ok")
  (data (i32.const 136) "ZZ")
  (func (export "docex_run") (result i32)
    (local $i i32)
    (if (i32.eqz (call $set (i32.const 0) (i32.const 1) (i32.const 32) (i32.const 2))) (then (return (i32.const 1))))
    (if (i32.eqz (call $set (i32.const 16) (i32.const 5) (i32.const 32) (i32.const 2))) (then (return (i32.const 2))))
    ;; a string value of 64 KiB + 1
    (i32.store8 (i32.const 1024) (i32.const 0x73))
    (memory.fill (i32.const 1025) (i32.const 0x61) (i32.const 65537))
    (if (i32.eqz (call $set (i32.const 96) (i32.const 2) (i32.const 1024) (i32.const 65538))) (then (return (i32.const 3))))
    ;; 256 distinct keys are fine; the 257th is not
    (loop $l
      (i32.store8 (i32.const 128) (i32.add (i32.const 65) (i32.shr_u (local.get $i) (i32.const 4))))
      (i32.store8 (i32.const 129) (i32.add (i32.const 65) (i32.and (local.get $i) (i32.const 15))))
      (if (call $set (i32.const 128) (i32.const 2) (i32.const 32) (i32.const 2)) (then (return (i32.const 4))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 256))))
    (if (i32.eqz (call $set (i32.const 136) (i32.const 2) (i32.const 32) (i32.const 2))) (then (return (i32.const 5))))
    (if (i32.eqz (call $emit (i32.const 48) (i32.const 3) (i32.const 64) (i32.const 10) (i32.const 32) (i32.const 2))) (then (return (i32.const 6))))
    (i32.const 0)))
