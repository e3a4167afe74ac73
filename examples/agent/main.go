// Command agent is an agent tool loop that embeds the docex engine
// directly, without MCP: each agent identity gets its own engine.Session,
// and the model's tool calls are dispatched to that session's methods.
// A scripted stand-in plays the model, so the program runs offline and its
// output is deterministic (example_test.go checks it); replace script with
// calls to a real model. docs/agents.md walks through it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

func main() {
	dir, err := os.MkdirTemp("", "docex-agent-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// toolCall is what a model asks for: a tool name and JSON arguments.
type toolCall struct {
	Tool string          `json:"tool"`
	Args json.RawMessage `json:"args"`
}

// agent is one agent identity. Its session is created once, from the
// identity the host decided; the model never chooses it.
type agent struct {
	name    string
	session *engine.Session
	basket  string // the basket id the agent works in
}

// dispatch runs one tool call as the agent. A failure is returned as a
// tool result the model can read ("error: ..."), never as a crash.
func (a *agent) dispatch(ctx context.Context, call toolCall) string {
	out, err := a.run(ctx, call)
	if err != nil {
		return fmt.Sprintf("error (%s): %v", docex.Code(err), err)
	}
	return out
}

func (a *agent) run(ctx context.Context, call toolCall) (string, error) {
	var args struct {
		Name, Text, Key, Value, ID string
	}
	if len(call.Args) > 0 {
		if err := json.Unmarshal(call.Args, &args); err != nil {
			return "", docex.Errorf(docex.ErrInvalid, "arguments: %v", err)
		}
	}
	switch call.Tool {
	case "add_note":
		added, err := a.session.AddDocument(ctx, a.basket, engine.NewDocument{
			Name: args.Name, Content: strings.NewReader(args.Text),
			Metadata: map[string]docex.Value{args.Key: docex.String(args.Value), "author": docex.String(a.name)},
		})
		if err != nil {
			return "", err
		}
		return "added " + added.Document.Name, nil
	case "find_notes":
		docs, total, err := a.session.FindDocuments(ctx, a.basket, []docex.MetaFilter{{Key: args.Key, Value: docex.String(args.Value)}}, docex.Page{Limit: 10, Order: docex.OrderName})
		if err != nil {
			return "", err
		}
		names := make([]string, len(docs))
		for i, d := range docs {
			names[i] = d.Name
		}
		return fmt.Sprintf("%d found: %s", total, strings.Join(names, ", ")), nil
	case "read_note":
		docs, _, err := a.session.FindDocuments(ctx, a.basket, []docex.MetaFilter{{Key: args.Key, Value: docex.String(args.Value)}}, docex.Page{Limit: 1, Order: docex.OrderName})
		if err != nil {
			return "", err
		}
		if len(docs) == 0 {
			return "", docex.Errorf(docex.ErrNotFound, "no note with %s=%s", args.Key, args.Value)
		}
		data, err := a.session.ReadContent(ctx, docs[0].ID)
		return string(data), err
	case "get":
		d, err := a.session.Document(ctx, args.ID)
		if err != nil {
			return "", err
		}
		return d.Name, nil
	}
	return "", docex.Errorf(docex.ErrInvalid, "unknown tool %q", call.Tool)
}

// script plays the model: the calls each agent makes, in turn. A real
// loop sends the transcript to a model and parses its next tool call.
var script = map[string][]string{
	"researcher": {
		`{"tool":"add_note","args":{"name":"pricing.md","text":"Competitor raised prices 8%.","key":"topic","value":"pricing"}}`,
		`{"tool":"add_note","args":{"name":"churn.md","text":"Churn is flat this quarter.","key":"topic","value":"churn"}}`,
		`{"tool":"find_notes","args":{"key":"topic","value":"pricing"}}`,
	},
	"reviewer": {
		`{"tool":"read_note","args":{"key":"topic","value":"pricing"}}`,
		`{"tool":"add_note","args":{"name":"verdict.md","text":"Approved.","key":"topic","value":"verdict"}}`,
		`{"tool":"delete_everything","args":{}}`,
	},
	"intruder": {
		`{"tool":"find_notes","args":{"key":"topic","value":"pricing"}}`,
		`{"tool":"get","args":{"id":"FORGED"}}`,
	},
}

// run sets up an engine with two tenants and runs three agents: a writer
// and a reader of tenant acme, and an admin of tenant globex who tries
// acme's ids.
func run(ctx context.Context, dir string, w io.Writer) error {
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		return err
	}
	defer be.Close()
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content")}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		return err
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	for _, t := range []string{"acme", "globex"} {
		if _, err := eng.Provisioner("ops").Create(ctx, t, ""); err != nil {
			return err
		}
	}

	// The host decides each agent's identity: one session per identity,
	// audited as origin "agent" so the log tells agents' calls apart.
	newAgent := func(name, tenant, role string) (*agent, error) {
		s, err := eng.AsWith(docex.UserContext{UserID: name, TenantID: tenant, Roles: []string{role}},
			engine.SessionOptions{Origin: "agent", AuditReads: true})
		if err != nil {
			return nil, err
		}
		return &agent{name: name, session: s}, nil
	}
	researcher, err := newAgent("researcher", "acme", "writer")
	if err != nil {
		return err
	}
	reviewer, err := newAgent("reviewer", "acme", "reader")
	if err != nil {
		return err
	}
	intruder, err := newAgent("intruder", "globex", "admin")
	if err != nil {
		return err
	}
	notes, err := researcher.session.CreateBasket(ctx, "notes")
	if err != nil {
		return err
	}
	researcher.basket, reviewer.basket = notes.ID, notes.ID
	intruder.basket = notes.ID // acme's basket id, leaked to globex's agent

	for _, a := range []*agent{researcher, reviewer, intruder} {
		for _, line := range script[a.name] {
			// FORGED stands for an id of acme's a model might have seen
			// elsewhere and try.
			line = strings.ReplaceAll(line, "FORGED", forgedID(ctx, eng, notes.ID))
			var call toolCall
			if err := json.Unmarshal([]byte(line), &call); err != nil {
				return err
			}
			// Ids differ from run to run: the transcript shows them as <id>.
			fmt.Fprintf(w, "%s -> %s: %s\n", a.name, call.Tool, uuidRE.ReplaceAllString(a.dispatch(ctx, call), "<id>"))
		}
	}

	// The audit log records every call with its origin and outcome.
	log, err := eng.As(docex.UserContext{UserID: "ops", TenantID: "acme", Roles: []string{"admin"}}).Audit(ctx, docex.Page{Limit: 100})
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, e := range log {
		if strings.HasPrefix(e.Operation, "agent.") {
			counts[e.UserID+" "+e.Outcome]++
		}
	}
	fmt.Fprintf(w, "acme audit: researcher ok %d, reviewer ok %d, reviewer denied %d\n",
		counts["researcher ok"], counts["reviewer ok"], counts["reviewer denied"])
	if counts["intruder ok"]+counts["intruder denied"]+counts["intruder error"] != 0 {
		return errors.New("globex's agent appears in acme's audit log")
	}
	return nil
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// forgedID returns the id of one of acme's documents, read by the
// operator outside any agent's session.
func forgedID(ctx context.Context, eng *engine.Engine, basket string) string {
	ops := eng.As(docex.UserContext{UserID: "ops", TenantID: "acme", Roles: []string{"admin"}})
	docs, err := ops.Documents(ctx, basket, docex.Page{Limit: 1})
	if err != nil || len(docs) == 0 {
		return "none"
	}
	return docs[0].ID
}
