;; startwork (friendly): initialisation that does known work, so that the
;; cold run's report shows it (Report.InitDuration, InitInstructions):
;; the start function counts a global to 100,000 in a loop, _initialize
;; grows memory by 16 pages (16,384 units) and fills them (1 MiB, 16,384
;; units). docex_run returns 0 only if both ran.
(module
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (func $start
    (loop $l
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (br_if $l (i32.lt_u (global.get $n) (i32.const 100000)))))
  (start $start)
  (func (export "_initialize")
    (drop (memory.grow (i32.const 16)))
    (memory.fill (i32.const 65536) (i32.const 1) (i32.const 1048576)))
  (func (export "docex_run") (result i32)
    (i32.or
      (i32.ne (global.get $n) (i32.const 100000))
      (i32.ne (i32.load8_u (i32.const 1114111)) (i32.const 1)))))
