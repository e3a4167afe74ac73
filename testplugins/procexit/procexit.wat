;; procexit (hostile): calls WASI proc_exit(3) in the middle of a run.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32)
    (call $exit (i32.const 3))
    (i32.const 0)))
