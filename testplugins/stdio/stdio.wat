;; stdio (hostile): tries to leave its WASI descriptor table changed for
;; the next invocation on the same pooled instance. With parameter op it
;; changes the table and returns 0: cN closes fd N (fd_close), nMN
;; renumbers fd M to N (fd_renumber), fN sets APPEND|NONBLOCK on fd N and
;; aN sets APPEND on it (fd_fdstat_set_flags); metadata "op" is the errno.
;; Without op it writes "fresh stdout" to fd 1 and "fresh stderr" to fd 2
;; and reads fd 0, and sets metadata "stdout", "stderr" and "stdin" to
;; the errno of each (0: success). Each errno is one character, '0' + errno.
;; Every invocation must see fds 0, 1 and 2 as a new instance has them
;; (sandbox TestStdioFreshPerInvocation).
(module
  (import "docex" "param_get" (func $param (param i32 i32 i32 i32) (result i32)))
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $setflags (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "op")
  (data (i32.const 40) "stdout")
  (data (i32.const 48) "stderr")
  (data (i32.const 56) "stdin")
  (data (i32.const 64) "\80\00\00\00\0c\00\00\00") ;; iovec {ptr=128, len=12}
  (data (i32.const 72) "\90\00\00\00\0c\00\00\00") ;; iovec {ptr=144, len=12}
  (data (i32.const 80) "\c0\00\00\00\10\00\00\00") ;; iovec {ptr=192, len=16}
  (data (i32.const 128) "fresh stdout")
  (data (i32.const 144) "fresh stderr")
  ;; report sets metadata key (ptr, len) to the string '0' + errno.
  (func $report (param $key i32) (param $len i32) (param $errno i32)
    (i32.store8 (i32.const 256) (i32.const 115)) ;; 's'
    (i32.store8 (i32.const 257) (i32.add (i32.const 48) (local.get $errno)))
    (drop (call $set (local.get $key) (local.get $len) (i32.const 256) (i32.const 2))))
  (func (export "docex_run") (result i32)
    (local $c i32) (local $d i32) (local $e i32)
    (if (i32.gt_s (call $param (i32.const 0) (i32.const 2) (i32.const 16) (i32.const 8)) (i32.const 0))
      (then
        (local.set $c (i32.load8_u (i32.const 16)))
        (local.set $d (i32.sub (i32.load8_u (i32.const 17)) (i32.const 48)))
        (local.set $e (i32.sub (i32.load8_u (i32.const 18)) (i32.const 48)))
        (if (i32.eq (local.get $c) (i32.const 99)) ;; 'c'
          (then (call $report (i32.const 0) (i32.const 2) (call $close (local.get $d)))))
        (if (i32.eq (local.get $c) (i32.const 110)) ;; 'n'
          (then (call $report (i32.const 0) (i32.const 2) (call $renumber (local.get $d) (local.get $e)))))
        (if (i32.eq (local.get $c) (i32.const 102)) ;; 'f'
          (then (call $report (i32.const 0) (i32.const 2) (call $setflags (local.get $d) (i32.const 5)))))
        (if (i32.eq (local.get $c) (i32.const 97)) ;; 'a'
          (then (call $report (i32.const 0) (i32.const 2) (call $setflags (local.get $d) (i32.const 1)))))
        (return (i32.const 0))))
    (call $report (i32.const 40) (i32.const 6) (call $write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 300)))
    (call $report (i32.const 48) (i32.const 6) (call $write (i32.const 2) (i32.const 72) (i32.const 1) (i32.const 300)))
    (call $report (i32.const 56) (i32.const 5) (call $read (i32.const 0) (i32.const 80) (i32.const 1) (i32.const 300)))
    (i32.const 0)))
