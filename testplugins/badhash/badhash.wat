;; badhash: a valid module whose plugin.toml carries a wrong sha256.
(module
  (memory (export "memory") 1)
  (func (export "docex_run") (result i32) (i32.const 0)))
