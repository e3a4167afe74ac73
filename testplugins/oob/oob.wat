;; oob (hostile): passes out-of-bounds pointers/lengths to a host function
;; chosen by parameter "fn" (one letter, a..o, see the table below). Every
;; call must trap the guest without harming the host. The fuzz_* exports pass
;; their arguments straight through (used by the host's fuzz test).
(module
  (import "docex" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "docex" "doc_size" (func $doc_size (param i32) (result i64)))
  (import "docex" "doc_name" (func $doc_name (param i32 i32 i32) (result i32)))
  (import "docex" "doc_content_type" (func $doc_ct (param i32 i32 i32) (result i32)))
  (import "docex" "content_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (import "docex" "metadata_get" (func $mget (param i32 i32 i32 i32 i32) (result i32)))
  (import "docex" "metadata_keys" (func $mkeys (param i32 i32 i32) (result i32)))
  (import "docex" "metadata_set" (func $mset (param i32 i32 i32 i32) (result i32)))
  (import "docex" "emit" (func $emit (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "docex" "derived_metadata_set" (func $dmset (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "docex" "param_get" (func $param (param i32 i32 i32 i32) (result i32)))
  (import "docex" "set_status" (func $status (param i32 i32 i32) (result i32)))
  (import "docex" "lookup_name" (func $lname (param i32 i32 i32 i32) (result i32)))
  (import "docex" "lookup_metadata" (func $lmeta (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "fn")
  (data (i32.const 16) "key")
  (func (export "docex_run") (result i32)
    (if (i32.ne (call $param (i32.const 0) (i32.const 2) (i32.const 32) (i32.const 1)) (i32.const 1))
      (then (return (i32.const 100))))
    (block $o (block $n (block $m (block $l (block $k (block $j (block $i (block $h
    (block $g (block $f (block $e (block $d (block $c (block $b (block $a
      (br_table $a $b $c $d $e $f $g $h $i $j $k $l $m $n $o
        (i32.sub (i32.load8_u (i32.const 32)) (i32.const 97))))
      ;; a: log message far past the end
      (return (call $log (i32.const 1) (i32.const 0xFFFFFF00) (i32.const 0x200))))
      ;; b: doc_name buffer straddling the end
      (return (call $doc_name (i32.const 0) (i32.const 65530) (i32.const 100))))
      ;; c: doc_content_type huge capacity
      (return (call $doc_ct (i32.const 0) (i32.const 0) (i32.const 0xFFFFFFFF))))
      ;; d: content_read destination out of bounds
      (return (call $read (i32.const 0) (i64.const 0) (i32.const 70000) (i32.const 16))))
      ;; e: metadata_get key out of bounds
      (return (call $mget (i32.const 0) (i32.const 0x7FFFFFFF) (i32.const 8) (i32.const 0) (i32.const 8))))
      ;; f: metadata_keys buffer out of bounds
      (return (call $mkeys (i32.const 0) (i32.const 65536) (i32.const 1))))
      ;; g: metadata_set value length wraps 32 bits
      (return (call $mset (i32.const 16) (i32.const 3) (i32.const 16) (i32.const 0xFFFFFFF0))))
      ;; h: emit data out of bounds
      (return (call $emit (i32.const 16) (i32.const 3) (i32.const 16) (i32.const 3) (i32.const 60000) (i32.const 60000))))
      ;; i: param_get buffer out of bounds
      (return (call $param (i32.const 0) (i32.const 2) (i32.const 0xFFFFFFFF) (i32.const 1))))
      ;; j: set_status message out of bounds
      (return (call $status (i32.const 1) (i32.const 65535) (i32.const 2))))
      ;; k: lookup_name name out of bounds
      (return (call $lname (i32.const 0x80000000) (i32.const 4) (i32.const 0) (i32.const 1))))
      ;; l: lookup_metadata value out of bounds
      (return (call $lmeta (i32.const 16) (i32.const 3) (i32.const 65535) (i32.const 9) (i32.const 0) (i32.const 1))))
      ;; m: lookup_name output array out of bounds (4*cap overflows 32 bits)
      (return (call $lname (i32.const 16) (i32.const 3) (i32.const 0) (i32.const 0x40000001))))
      ;; n: content_read with a negative offset (not a trap: EINVAL)
      (return (call $read (i32.const 0) (i64.const -5) (i32.const 0) (i32.const 16))))
    ;; o: doc_size of a forged handle (not a trap: EINVAL)
    (return (i32.wrap_i64 (call $doc_size (i32.const 0x7FFFFFFF)))))
  (func (export "fuzz_log") (param i32 i32 i32) (result i32) (call $log (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fuzz_doc_size") (param i32) (result i64) (call $doc_size (local.get 0)))
  (func (export "fuzz_doc_name") (param i32 i32 i32) (result i32) (call $doc_name (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fuzz_doc_content_type") (param i32 i32 i32) (result i32) (call $doc_ct (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fuzz_content_read") (param i32 i64 i32 i32) (result i32) (call $read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fuzz_metadata_get") (param i32 i32 i32 i32 i32) (result i32) (call $mget (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "fuzz_metadata_keys") (param i32 i32 i32) (result i32) (call $mkeys (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fuzz_metadata_set") (param i32 i32 i32 i32) (result i32) (call $mset (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fuzz_emit") (param i32 i32 i32 i32 i32 i32) (result i32) (call $emit (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "fuzz_derived_metadata_set") (param i32 i32 i32 i32 i32 i32) (result i32) (call $dmset (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "fuzz_param_get") (param i32 i32 i32 i32) (result i32) (call $param (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fuzz_set_status") (param i32 i32 i32) (result i32) (call $status (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fuzz_lookup_name") (param i32 i32 i32 i32) (result i32) (call $lname (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fuzz_lookup_metadata") (param i32 i32 i32 i32 i32 i32) (result i32) (call $lmeta (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5))))
