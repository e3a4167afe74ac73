;; metalook (hostile): under a 64 KiB memory limit, looks up the document
;; named "victim.txt" 1,100 times and calls doc_size on each handle. Each
;; handle's first use used to load the document's metadata into host
;; memory again, uncounted (256 values of 64 KiB: 16 MiB a handle, 17 GB
;; for 1,023 handles). Now every handle to one document shares one copy,
;; whose keys and values count against the run's host-memory budget
;; (ELIMIT past it), and the 1,024th handle gets ELIMIT. It sets "sized"
;; and "limited" to the number of doc_size calls that succeeded and that
;; got ELIMIT, and "handles" to the handles it got.
(module
  (import "docex" "lookup_name" (func $lookup (param i32 i32 i32 i32) (result i32)))
  (import "docex" "doc_size" (func $size (param i32) (result i64)))
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "victim.txt")
  (data (i32.const 16) "sized")
  (data (i32.const 24) "limited")
  (data (i32.const 32) "handles")
  ;; $num writes "n" and the decimal of $v at 256 and sets key ($k, $kl).
  (func $num (param $k i32) (param $kl i32) (param $v i32)
    (local $p i32)
    (local.set $p (i32.const 300))
    (loop $d
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $d (local.get $v)))
    (local.set $p (i32.sub (local.get $p) (i32.const 1)))
    (i32.store8 (local.get $p) (i32.const 110)) ;; 'n'
    (drop (call $set (local.get $k) (local.get $kl) (local.get $p) (i32.sub (i32.const 300) (local.get $p)))))
  (func (export "docex_run") (result i32)
    (local $i i32) (local $got i32) (local $ok i32) (local $lim i32) (local $r i64)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 1100)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $done (i32.le_s (call $lookup (i32.const 0) (i32.const 10) (i32.const 64) (i32.const 1)) (i32.const 0)))
        (local.set $got (i32.add (local.get $got) (i32.const 1)))
        (local.set $r (call $size (i32.load (i32.const 64))))
        (if (i64.ge_s (local.get $r) (i64.const 0))
          (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
        (if (i64.eq (local.get $r) (i64.const -4))
          (then (local.set $lim (i32.add (local.get $lim) (i32.const 1)))))
        (br $next)))
    (call $num (i32.const 16) (i32.const 5) (local.get $ok))
    (call $num (i32.const 24) (i32.const 7) (local.get $lim))
    (call $num (i32.const 32) (i32.const 7) (local.get $got))
    (i32.const 0)))
