;; fdstate (hostile): tries every WASI function that takes a descriptor,
;; to leave the descriptor table of a pooled instance changed for the next
;; invocation. With parameter op = letter + fd digit (for instance "f1") it
;; makes one call on that fd and returns 0; metadata "op" is the errno
;; ('0' + errno). Letters: a fd_advise, A fd_allocate, c fd_close,
;; D fd_datasync, f fd_fdstat_set_flags APPEND|NONBLOCK, g APPEND,
;; h NONBLOCK, i no flags, r fd_fdstat_set_rights, z fd_filestat_set_size,
;; t fd_filestat_set_times, P fd_pread, p fd_pwrite, R fd_read, W fd_write,
;; d fd_readdir, s fd_seek to 100 from the start, S fd_seek 0 from the end,
;; y fd_sync, T fd_tell, N fd_renumber onto fd 1, o path_open (create),
;; O path_open (directory), m path_create_directory, x
;; path_remove_directory, u path_unlink_file, n path_rename, l path_link,
;; L path_symlink, e path_filestat_set_times, E path_filestat_get,
;; k path_readlink, q poll_oneoff (read and write subscriptions),
;; K sock_accept, v sock_recv, V sock_send, Z sock_shutdown,
;; b fd_prestat_dir_name.
;; Without op it sets metadata "fds" to a fingerprint of fds 0 to 4, in
;; hex: for each, the errno and result of fd_fdstat_get, fd_filestat_get,
;; fd_prestat_get and fd_tell; then the errnos of a 1-byte fd_write to
;; fds 1 and 2 and of fd_read of fd 0. An instance reused after any op
;; must give the fingerprint of a new instance (sandbox
;; TestDescriptorStateFresh).
(module
  (import "docex" "param_get" (func $param (param i32 i32 i32 i32) (result i32)))
  (import "docex" "metadata_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_advise" (func $fd_advise (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $fd_allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_datasync" (func $fd_datasync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $fd_fdstat_set_flags (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_rights" (func $fd_fdstat_set_rights (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $fd_filestat_set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times" (func $fd_filestat_set_times (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $fd_sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_tell" (func $fd_tell (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times" (func $path_filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink" (func $path_readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $path_remove_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $sock_shutdown (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0: keys; 64: iovec {ptr=128, len=1}; 128: "x"; 136: "y";
  ;; 256: scratch results; 512: poll subscriptions (2 x 48 bytes) and
  ;; events; 1024: fingerprint; 4096: metadata value ('s' + hex).
  (data (i32.const 0) "op")
  (data (i32.const 8) "fds")
  (data (i32.const 64) "\80\00\00\00\01\00\00\00")
  (data (i32.const 128) "x")
  (data (i32.const 136) "y")
  ;; subscription 0: fd_read (tag 1) on fd 0; subscription 1: fd_write (tag 2) on fd 1
  (data (i32.const 520) "\01")
  (data (i32.const 568) "\02")
  (data (i32.const 576) "\01")
  ;; op runs one call (op letter $c, fd $d) and returns its errno.
  (func $op (param $c i32) (param $d i32) (result i32)
    (if (i32.eq (local.get $c) (i32.const 97)) (then (return (call $fd_advise (local.get $d) (i64.const 0) (i64.const 100) (i32.const 4)))))
    (if (i32.eq (local.get $c) (i32.const 65)) (then (return (call $fd_allocate (local.get $d) (i64.const 0) (i64.const 4096)))))
    (if (i32.eq (local.get $c) (i32.const 99)) (then (return (call $fd_close (local.get $d)))))
    (if (i32.eq (local.get $c) (i32.const 68)) (then (return (call $fd_datasync (local.get $d)))))
    (if (i32.eq (local.get $c) (i32.const 102)) (then (return (call $fd_fdstat_set_flags (local.get $d) (i32.const 5)))))
    (if (i32.eq (local.get $c) (i32.const 103)) (then (return (call $fd_fdstat_set_flags (local.get $d) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 104)) (then (return (call $fd_fdstat_set_flags (local.get $d) (i32.const 4)))))
    (if (i32.eq (local.get $c) (i32.const 105)) (then (return (call $fd_fdstat_set_flags (local.get $d) (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 114)) (then (return (call $fd_fdstat_set_rights (local.get $d) (i64.const 0) (i64.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 122)) (then (return (call $fd_filestat_set_size (local.get $d) (i64.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 116)) (then (return (call $fd_filestat_set_times (local.get $d) (i64.const 1) (i64.const 1) (i32.const 5)))))
    (if (i32.eq (local.get $c) (i32.const 80)) (then (return (call $fd_pread (local.get $d) (i32.const 64) (i32.const 1) (i64.const 100) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 112)) (then (return (call $fd_pwrite (local.get $d) (i32.const 64) (i32.const 1) (i64.const 100) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 82)) (then (return (call $fd_read (local.get $d) (i32.const 64) (i32.const 1) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 87)) (then (return (call $fd_write (local.get $d) (i32.const 64) (i32.const 1) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 100)) (then (return (call $fd_readdir (local.get $d) (i32.const 256) (i32.const 128) (i64.const 0) (i32.const 400)))))
    (if (i32.eq (local.get $c) (i32.const 115)) (then (return (call $fd_seek (local.get $d) (i64.const 100) (i32.const 0) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 83)) (then (return (call $fd_seek (local.get $d) (i64.const 0) (i32.const 2) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 121)) (then (return (call $fd_sync (local.get $d)))))
    (if (i32.eq (local.get $c) (i32.const 84)) (then (return (call $fd_tell (local.get $d) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 78)) (then (return (call $fd_renumber (local.get $d) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 111)) (then (return (call $path_open (local.get $d) (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 1) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 79)) (then (return (call $path_open (local.get $d) (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 2) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 109)) (then (return (call $path_create_directory (local.get $d) (i32.const 128) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 120)) (then (return (call $path_remove_directory (local.get $d) (i32.const 128) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 117)) (then (return (call $path_unlink_file (local.get $d) (i32.const 128) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 110)) (then (return (call $path_rename (local.get $d) (i32.const 128) (i32.const 1) (local.get $d) (i32.const 136) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 108)) (then (return (call $path_link (local.get $d) (i32.const 0) (i32.const 128) (i32.const 1) (local.get $d) (i32.const 136) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 76)) (then (return (call $path_symlink (i32.const 128) (i32.const 1) (local.get $d) (i32.const 136) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 101)) (then (return (call $path_filestat_set_times (local.get $d) (i32.const 0) (i32.const 128) (i32.const 1) (i64.const 1) (i64.const 1) (i32.const 5)))))
    (if (i32.eq (local.get $c) (i32.const 69)) (then (return (call $path_filestat_get (local.get $d) (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 107)) (then (return (call $path_readlink (local.get $d) (i32.const 128) (i32.const 1) (i32.const 256) (i32.const 64) (i32.const 400)))))
    (if (i32.eq (local.get $c) (i32.const 113))
      (then
        (i32.store (i32.const 528) (local.get $d))
        (i32.store (i32.const 576) (local.get $d))
        (return (call $poll_oneoff (i32.const 512) (i32.const 640) (i32.const 2) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 75)) (then (return (call $sock_accept (local.get $d) (i32.const 0) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 118)) (then (return (call $sock_recv (local.get $d) (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 256) (i32.const 260)))))
    (if (i32.eq (local.get $c) (i32.const 86)) (then (return (call $sock_send (local.get $d) (i32.const 64) (i32.const 1) (i32.const 0) (i32.const 256)))))
    (if (i32.eq (local.get $c) (i32.const 90)) (then (return (call $sock_shutdown (local.get $d) (i32.const 3)))))
    (if (i32.eq (local.get $c) (i32.const 98)) (then (return (call $fd_prestat_dir_name (local.get $d) (i32.const 256) (i32.const 64)))))
    (i32.const 255))
  ;; fingerprint writes fds 0-4's state from 1024 on and returns its length.
  (func $fingerprint (result i32)
    (local $fd i32) (local $p i32)
    (local.set $p (i32.const 1024))
    (loop $l
      (i32.store8 (local.get $p) (call $fd_fdstat_get (local.get $fd) (i32.add (local.get $p) (i32.const 1))))
      (local.set $p (i32.add (local.get $p) (i32.const 25)))
      (i32.store8 (local.get $p) (call $fd_filestat_get (local.get $fd) (i32.add (local.get $p) (i32.const 1))))
      (local.set $p (i32.add (local.get $p) (i32.const 65)))
      (i32.store8 (local.get $p) (call $fd_prestat_get (local.get $fd) (i32.add (local.get $p) (i32.const 1))))
      (local.set $p (i32.add (local.get $p) (i32.const 9)))
      (i32.store8 (local.get $p) (call $fd_tell (local.get $fd) (i32.add (local.get $p) (i32.const 1))))
      (local.set $p (i32.add (local.get $p) (i32.const 9)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $fd) (i32.const 5))))
    (i32.store8 (local.get $p) (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 256)))
    (i32.store8 (i32.add (local.get $p) (i32.const 1)) (call $fd_write (i32.const 2) (i32.const 64) (i32.const 1) (i32.const 256)))
    (i32.store8 (i32.add (local.get $p) (i32.const 2)) (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 256)))
    (i32.sub (i32.add (local.get $p) (i32.const 3)) (i32.const 1024)))
  (func $hex (param $x i32) (result i32)
    (select (i32.add (local.get $x) (i32.const 48)) (i32.add (local.get $x) (i32.const 87)) (i32.lt_u (local.get $x) (i32.const 10))))
  (func (export "docex_run") (result i32)
    (local $n i32) (local $i i32) (local $b i32)
    (if (i32.gt_s (call $param (i32.const 0) (i32.const 2) (i32.const 16) (i32.const 8)) (i32.const 0))
      (then
        (i32.store8 (i32.const 4096) (i32.const 115)) ;; 's'
        (i32.store8 (i32.const 4097) (i32.add (i32.const 48)
          (call $op (i32.load8_u (i32.const 16)) (i32.sub (i32.load8_u (i32.const 17)) (i32.const 48)))))
        (drop (call $set (i32.const 0) (i32.const 2) (i32.const 4096) (i32.const 2)))
        (return (i32.const 0))))
    (local.set $n (call $fingerprint))
    (i32.store8 (i32.const 4096) (i32.const 115)) ;; 's'
    (loop $l
      (local.set $b (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
      (i32.store8 (i32.add (i32.const 4097) (i32.shl (local.get $i) (i32.const 1))) (call $hex (i32.shr_u (local.get $b) (i32.const 4))))
      (i32.store8 (i32.add (i32.const 4098) (i32.shl (local.get $i) (i32.const 1))) (call $hex (i32.and (local.get $b) (i32.const 15))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (drop (call $set (i32.const 8) (i32.const 3) (i32.const 4096) (i32.add (i32.shl (local.get $n) (i32.const 1)) (i32.const 1))))
    (i32.const 0)))
