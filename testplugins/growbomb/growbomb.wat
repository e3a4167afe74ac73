;; growbomb (hostile): memory.grow and table.grow by large deltas, each one
;; instruction. Its code changes a table, so every call gets a new
;; instance, whose memory reserves the whole limit: a grow commits pages
;; of it (before, Go memory that a grow allocated and zeroed).
;; docex_run: grows memory by 4095 pages (to 256 MiB) in one instruction.
;; docex_run_loop: memory.grow by 65535 pages (refused) in a loop, never
;; ending.
;; docex_run_table: table.grow by 2^20 - 1 elements (up to the cap).
;; docex_run_tableloop: table.grow by 2^31 - 1 elements (refused) in a
;; loop, never ending.
;; Each returns 0.
(module
  (memory (export "memory") 1)
  (table 1 funcref)
  (func (export "docex_run") (result i32)
    (drop (memory.grow (i32.const 4095)))
    (i32.const 0))
  (func (export "docex_run_loop") (result i32)
    (loop $l
      (drop (memory.grow (i32.const 65535)))
      (br $l))
    (i32.const 0))
  (func (export "docex_run_table") (result i32)
    (drop (table.grow 0 (ref.null func) (i32.const 1048575)))
    (i32.const 0))
  (func (export "docex_run_tableloop") (result i32)
    (loop $l
      (drop (table.grow 0 (ref.null func) (i32.const 0x7fffffff)))
      (br $l))
    (i32.const 0)))
