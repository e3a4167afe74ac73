package main

import (
	"context"
	"os"
)

// The agents' transcript: the reader's write and the unknown tool are tool
// errors, and globex's agent finds nothing of acme's.
func Example() {
	dir, err := os.MkdirTemp("", "docex-agent-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), dir, os.Stdout); err != nil {
		panic(err)
	}
	// Output:
	// researcher -> add_note: added pricing.md
	// researcher -> add_note: added churn.md
	// researcher -> find_notes: 1 found: pricing.md
	// reviewer -> read_note: Competitor raised prices 8%.
	// reviewer -> add_note: error (forbidden): forbidden: write requires one of the roles [writer admin] (user "reviewer" has [reader])
	// reviewer -> delete_everything: error (invalid): unknown tool "delete_everything"
	// intruder -> find_notes: error (not_found): basket "<id>" not found
	// intruder -> get: error (not_found): document "<id>" not found
	// acme audit: researcher ok 4, reviewer ok 2, reviewer denied 1
}
