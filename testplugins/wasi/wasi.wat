;; wasi (hostile): probes WASI for files, environment, arguments, clocks and
;; sleeps. Returns 0 only if every probe was refused or harmless; otherwise
;; the number of the first probe that succeeded. Writes one line to stdout.
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/etc/passwd")
  (data (i32.const 16) "../../etc/passwd")
  (data (i32.const 64) "\80\00\00\00\0c\00\00\00") ;; iovec {ptr=128, len=12}
  (data (i32.const 128) "hello stdout")
  ;; poll_oneoff subscription at 256: userdata(8) tag=0 clock(pad) id=1 timeout=3600s
  (data (i32.const 256) "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00\00\00\5c\9e\46\03\00\00")
  (func (export "docex_run") (result i32)
    ;; 1: any preopened directory (fds 3..9)
    (if (i32.eqz (call $prestat (i32.const 3) (i32.const 512))) (then (return (i32.const 1))))
    (if (i32.eqz (call $prestat (i32.const 4) (i32.const 512))) (then (return (i32.const 1))))
    ;; 2: open files by absolute and relative paths from fds 3 and 0
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 11) (i32.const 0)
          (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 512))) (then (return (i32.const 2))))
    (if (i32.eqz (call $path_open (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 16) (i32.const 0)
          (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 512))) (then (return (i32.const 2))))
    ;; 3: environment must be empty
    (drop (call $env_sizes (i32.const 512) (i32.const 516)))
    (if (i32.load (i32.const 512)) (then (return (i32.const 3))))
    ;; 4: arguments must be empty
    (drop (call $args_sizes (i32.const 512) (i32.const 516)))
    (if (i32.load (i32.const 512)) (then (return (i32.const 4))))
    ;; 5: stdin must be empty (read returns 0 bytes or an error)
    (i32.store (i32.const 520) (i32.const 0))
    (if (i32.eqz (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 520)))
      (then (if (i32.load (i32.const 520)) (then (return (i32.const 5))))))
    ;; 6: sockets are refused
    (if (i32.eqz (call $accept (i32.const 3) (i32.const 0) (i32.const 512))) (then (return (i32.const 6))))
    ;; 7: sleep for an hour must not block the host
    (drop (call $poll (i32.const 256) (i32.const 1024) (i32.const 1) (i32.const 512)))
    ;; randomness is allowed (deterministic); stdout goes to the capped log
    (drop (call $random (i32.const 600) (i32.const 16)))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 512)))
    (i32.const 0)))
