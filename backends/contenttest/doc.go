// Package contenttest is the conformance suite every driver.ContentStore
// runs unchanged, in the style of go-cloud's drivertest: the engine's
// content built-ins (filesystem, database) and backends/s3store. It drives
// a store through the same lifecycle the engine uses (stage, sync, put
// under the content lock inside the transaction that adds the reference,
// release after the reference is gone) against a real SQLite backend, and
// checks reads, verification, deletion, concurrent puts of one content, a
// put racing a delete, a crash between put and commit, and tenant
// isolation.
package contenttest
