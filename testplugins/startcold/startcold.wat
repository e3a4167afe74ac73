;; startcold (hostile): a module that can change a table (from a function
;; it never calls), so every run gets a fresh instance and runs its start
;; function anew; the start function does known work (a loop of 100,000
;; turns). Once, its start function ran under Config.InitTimeout and the
;; ceiling's budget on every run, whatever the plugin's own timeout_ms and
;; max_instructions (a probe's 800-million-turn loop: 7 s per run against
;; timeout_ms = 100, reported as 0.015 ms); it now runs under the
;; plugin's own limits (TestColdInitLimits).
(module
  (memory (export "memory") 1)
  (table 1 funcref)
  (global $n (mut i32) (i32.const 0))
  (func $never (drop (table.grow 0 (ref.null func) (i32.const 1))))
  (func $start
    (loop $l
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (br_if $l (i32.lt_u (global.get $n) (i32.const 100000)))))
  (start $start)
  (func (export "docex_run") (result i32)
    (i32.ne (global.get $n) (i32.const 100000))))
