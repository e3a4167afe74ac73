//go:build scale

package postgres

import "testing"

// Scale tests: make test-scale (go test -tags scale -run '^TestScale').

func TestScaleManyTenantsRoundRobin(t *testing.T) { manyTenantsRoundRobin(t, 1000) }
