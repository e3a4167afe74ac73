;; stdioinit (hostile): its start function closes stdout (fd_close(1));
;; docex_run writes "after init" to fd 1 and sets metadata "stdout" to the
;; errno, one character, '0' + errno. The descriptor table is part of the
;; state initialisation leaves: every invocation, on any instance, of any
;; tenant, must see stdout closed (EBADF, '8'), as the first instance
;; does (sandbox TestStdioClosedByInit).
(module
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 40) "stdout")
  (data (i32.const 64) "\80\00\00\00\0a\00\00\00") ;; iovec {ptr=128, len=10}
  (data (i32.const 128) "after init")
  (func $start (drop (call $close (i32.const 1))))
  (start $start)
  (func (export "docex_run") (result i32)
    (i32.store8 (i32.const 256) (i32.const 115)) ;; 's'
    (i32.store8 (i32.const 257) (i32.add (i32.const 48)
      (call $write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 300))))
    (drop (call $set (i32.const 40) (i32.const 6) (i32.const 256) (i32.const 2)))
    (i32.const 0)))
