;; upper: emits its input with ASCII letters upper-cased as the derived
;; document "upper". Used by the pipeline tests.
(module
  (import "docex" "doc_size" (func $doc_size (param i32) (result i64)))
  (import "docex" "doc_content_type" (func $doc_ct (param i32 i32 i32) (result i32)))
  (import "docex" "content_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (import "docex" "emit" (func $emit (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 17)
  (data (i32.const 0) "upper")
  (func (export "docex_run") (result i32)
    (local $size i32) (local $ctlen i32) (local $off i32) (local $n i32) (local $i i32) (local $c i32)
    (local.set $ctlen (call $doc_ct (i32.const 0) (i32.const 64) (i32.const 256)))
    (if (i32.or (i32.lt_s (local.get $ctlen) (i32.const 1)) (i32.gt_s (local.get $ctlen) (i32.const 256)))
      (then (return (i32.const 1))))
    (local.set $size (i32.wrap_i64 (call $doc_size (i32.const 0))))
    (if (i32.gt_u (local.get $size) (i32.const 1048576)) (then (return (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $off) (local.get $size)))
        (local.set $n (call $read (i32.const 0) (i64.extend_i32_u (local.get $off))
          (i32.add (i32.const 65536) (local.get $off)) (i32.sub (local.get $size) (local.get $off))))
        (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (i32.const 3))))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $off (i32.add (local.get $off) (local.get $n)))
        (br $l)))
    (block $end
      (loop $u
        (br_if $end (i32.ge_u (local.get $i) (local.get $off)))
        (local.set $c (i32.load8_u (i32.add (i32.const 65536) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (i32.store8 (i32.add (i32.const 65536) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $u)))
    (call $emit (i32.const 0) (i32.const 5) (i32.const 64) (local.get $ctlen) (i32.const 65536) (local.get $off))))
