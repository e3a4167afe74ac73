;; lookupflood (hostile): under a 64 KiB memory limit, looks up the document
;; named "big.txt" 1,100 times and reads one byte of each handle. Issue 7,
;; defect 3: each handle used to read the whole document into host memory
;; (1,023 handles of one 256 KiB document took the process to 344-375 MiB).
;; Looked-up documents are now read in ranges from their files, documents
;; the host has to load count against the run's host-memory budget, and the
;; 1,024th handle gets ELIMIT. It sets "read" and "failed" to the number of
;; one-byte reads that succeeded and failed, and "handles" to the handles
;; it got.
(module
  (import "docex" "lookup_name" (func $lookup (param i32 i32 i32 i32) (result i32)))
  (import "docex" "content_read" (func $read (param i32 i64 i32 i32) (result i32)))
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "big.txt")
  (data (i32.const 16) "read")
  (data (i32.const 24) "failed")
  (data (i32.const 32) "handles")
  ;; $num writes "n" and the decimal of $v at 256 and sets key ($k, $kl).
  (func $num (param $k i32) (param $kl i32) (param $v i32)
    (local $p i32) (local $q i32) (local $c i32)
    ;; digits backwards into 300..
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
    (local $i i32) (local $got i32) (local $ok i32) (local $bad i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 1100)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $done (i32.le_s (call $lookup (i32.const 0) (i32.const 7) (i32.const 64) (i32.const 1)) (i32.const 0)))
        (local.set $got (i32.add (local.get $got) (i32.const 1)))
        (if (i32.gt_s (call $read (i32.load (i32.const 64)) (i64.const 0) (i32.const 128) (i32.const 1)) (i32.const 0))
          (then (local.set $ok (i32.add (local.get $ok) (i32.const 1))))
          (else (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
        (br $next)))
    (call $num (i32.const 16) (i32.const 4) (local.get $ok))
    (call $num (i32.const 24) (i32.const 6) (local.get $bad))
    (call $num (i32.const 32) (i32.const 7) (local.get $got))
    (i32.const 0)))
