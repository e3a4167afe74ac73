package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

// The lifecycle of a multi-tenant engine: bootstrap the system once,
// provision a tenant, then work as a user of that tenant.
func ExampleEngine() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "docex-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		panic(err)
	}
	defer be.Close()
	cfg := engine.Config{
		MultiTenancy:   true,
		ContentStorage: engine.ContentFilesystem,
		ContentDir:     filepath.Join(dir, "content"),
	}

	// docex init: idempotent.
	created, err := engine.Bootstrap(ctx, be, cfg)
	fmt.Println("bootstrapped:", created, err)
	created, err = engine.Bootstrap(ctx, be, cfg)
	fmt.Println("bootstrapped again:", created, err)

	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	// The operator provisions a tenant.
	tenant, err := eng.Provisioner("ops").Create(ctx, "acme", "Acme Corp")
	fmt.Println("tenant:", tenant.ID, tenant.DisplayName, tenant.Status, err)

	// A user of that tenant works through a session.
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"writer"}})
	basket, err := s.CreateBasket(ctx, "invoices")
	fmt.Println("basket:", basket.Name, err)

	for i, text := range []string{"invoice one", "invoice two", "receipt"} {
		kind := "invoice"
		if strings.HasPrefix(text, "receipt") {
			kind = "receipt"
		}
		_, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{
			Name:    fmt.Sprintf("doc%d.txt", i+1),
			Content: strings.NewReader(text),
			Metadata: map[string]docex.Value{
				"kind": docex.String(kind),
				"year": docex.Number(2024),
			},
		})
		if err != nil {
			panic(err)
		}
	}
	// The same content again is not stored twice.
	again, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{Name: "copy.txt", Content: strings.NewReader("receipt")})
	fmt.Println("duplicate:", again.Duplicate, again.Document.Name, err)

	docs, total, err := s.FindDocuments(ctx, basket.ID, []docex.MetaFilter{
		{Key: "kind", Value: docex.String("invoice")},
		{Key: "year", Value: docex.Number(2024)},
	}, docex.Page{Order: docex.OrderName})
	fmt.Println("found:", total, err)
	for _, d := range docs {
		content, _ := s.ReadContent(ctx, d.ID)
		fmt.Printf("  %s %s %q\n", d.Name, d.ContentType, content)
	}

	b, _ := s.Basket(ctx, basket.ID)
	fmt.Println("documents in basket:", b.DocumentCount, "bytes:", b.Bytes)

	// Another tenant's user sees nothing of acme, and an unknown tenant is
	// refused.
	_, err = eng.As(docex.UserContext{UserID: "mallory", TenantID: "globex", Roles: []string{"admin"}}).Baskets(ctx, docex.Page{})
	fmt.Println("unknown tenant refused:", errors.Is(err, docex.ErrTenantUnknown))
	// A reader may not write.
	_, err = eng.As(docex.UserContext{UserID: "bob", TenantID: "acme", Roles: []string{"reader"}}).CreateBasket(ctx, "mine")
	fmt.Println("reader may not write:", errors.Is(err, docex.ErrForbidden))

	// Output:
	// bootstrapped: true <nil>
	// bootstrapped again: false <nil>
	// tenant: acme Acme Corp active <nil>
	// basket: invoices <nil>
	// duplicate: true doc3.txt <nil>
	// found: 2 <nil>
	//   doc1.txt text/plain; charset=utf-8 "invoice one"
	//   doc2.txt text/plain; charset=utf-8 "invoice two"
	// documents in basket: 3 bytes: 29
	// unknown tenant refused: true
	// reader may not write: true
}

// Local mode: no tenants, one SQLite file holds metadata and content.
func ExampleEngine_local() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "docex-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	be, err := sqlite.Open(ctx, sqlite.Config{Dir: dir, SystemFile: "docex.db"})
	if err != nil {
		panic(err)
	}
	defer be.Close()
	cfg := engine.Config{MultiTenancy: false, ContentStorage: engine.ContentDatabase}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		panic(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	// Without multi-tenancy the user context carries no tenant.
	s := eng.As(docex.UserContext{UserID: "me", Roles: []string{"admin"}})
	b, _ := s.CreateBasket(ctx, "notes")
	a, _ := s.AddDocument(ctx, b.ID, engine.NewDocument{Name: "todo.md", Content: strings.NewReader("- write docs")})
	fmt.Println(a.Document.Name, a.Document.ContentType, a.Document.Size)

	// Naming a tenant is an error, never a silent mapping.
	_, err = eng.As(docex.UserContext{UserID: "me", TenantID: "acme", Roles: []string{"admin"}}).Baskets(ctx, docex.Page{})
	fmt.Println("tenant refused:", errors.Is(err, docex.ErrMultiTenancyOff))

	// Tenant provisioning is unavailable too.
	_, err = eng.Provisioner("ops").Create(ctx, "acme", "")
	fmt.Println("provisioning refused:", errors.Is(err, docex.ErrMultiTenancyOff))

	// Output:
	// todo.md text/markdown; charset=utf-8 12
	// tenant refused: true
	// provisioning refused: true
}

// Tenant ids are validated, unique, and never the bootstrap tenant's.
func ExampleTenantProvisioner_Create() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "docex-example-")
	defer os.RemoveAll(dir)
	be, _ := sqlite.Open(ctx, sqlite.Config{Dir: dir})
	defer be.Close()
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentDatabase}
	engine.Bootstrap(ctx, be, cfg)
	eng, _ := engine.New(ctx, be, cfg)
	defer eng.Close()

	p := eng.Provisioner("ops")
	for _, id := range []string{"acme", "acme", "Acme", "system", "pg_catalog", "a--b"} {
		_, err := p.Create(ctx, id, "")
		code := "ok"
		if err != nil {
			code = docex.Code(err)
		}
		fmt.Printf("%-10s %s\n", id, code)
	}
	ts, _ := p.List(ctx)
	fmt.Println("tenants (with the bootstrap tenant):", len(ts))

	// Output:
	// acme       ok
	// acme       tenant_exists
	// Acme       invalid_id
	// system     tenant_exists
	// pg_catalog invalid_id
	// a--b       invalid_id
	// tenants (with the bootstrap tenant): 2
}

// ContentTypeByName gives the type a file name's extension stands for,
// normalised; a name without a known extension leaves the content to
// decide (false).
func ExampleContentTypeByName() {
	for _, name := range []string{"report.PDF", "notes.md", "README"} {
		ct, ok := engine.ContentTypeByName(name)
		fmt.Printf("%s: %q %v\n", name, ct, ok)
	}
	// Output:
	// report.PDF: "application/pdf" true
	// notes.md: "text/markdown; charset=utf-8" true
	// README: "" false
}
