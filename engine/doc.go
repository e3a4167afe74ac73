// Package engine is the docex API for applications: it wraps a storage
// backend (a driver.Backend such as backends/sqlite or backends/postgres)
// and adds, once for every backend, the lifecycle rules (bootstrap,
// explicit provisioning), the runtime checks (user context, tenant status,
// authorisation policy), deduplication, content storage and the audit log.
//
// Lifecycle:
//
//	be, _ := sqlite.Open(ctx, sqlite.Config{Dir: dir})
//	engine.Bootstrap(ctx, be, cfg)        // docex init: idempotent
//	eng, _ := engine.New(ctx, be, cfg)    // refuses an uninitialised system
//	eng.Provisioner("ops").Create(ctx, "acme", "Acme Corp")
//	s := eng.As(docex.UserContext{UserID: "u1", TenantID: "acme", Roles: []string{"writer"}})
//	b, _ := s.CreateBasket(ctx, "invoices")
//
// An Engine holds no global state; many engines with different backends can
// live in one process, and one Engine serves many tenants from many
// goroutines at once.
package engine
