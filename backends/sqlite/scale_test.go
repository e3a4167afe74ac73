//go:build scale

package sqlite_test

import "testing"

// Scale tests: make test-scale (go test -tags scale -run '^TestScale').

func TestScaleManyTenantsBoundedFiles(t *testing.T) { manyTenantsBoundedFiles(t, 1000) }
