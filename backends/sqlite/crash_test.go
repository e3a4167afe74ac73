package sqlite_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

// The crash tests run the test binary again as a child process
// (TestCrashChild), which provisions tenants or adds documents in a loop and
// prints each one on stdout once the call returned, and kill it with SIGKILL
// at a random moment. The parent then reopens the directory and checks that
// everything acknowledged is there and intact and nothing is half-made.

const (
	envCrashMode  = "DOCEX_CRASH_MODE" // tenants | docs-filesystem | docs-database | docs-parallel | docs-batch-filesystem
	envCrashDir   = "DOCEX_CRASH_DIR"
	envCrashSync  = "DOCEX_CRASH_SYNC"
	envCrashRound = "DOCEX_CRASH_ROUND"
)

const crashDocSize = 4 << 10

func crashConfigs(dir, mode, sync string) (sqlite.Config, engine.Config) {
	storage := engine.ContentDatabase
	if strings.HasSuffix(mode, "-filesystem") {
		storage = engine.ContentFilesystem
	}
	return sqlite.Config{Dir: filepath.Join(dir, "data"), Synchronous: sync},
		engine.Config{MultiTenancy: true, ContentStorage: storage, ContentDir: filepath.Join(dir, "content")}
}

// crashContent is the deterministic random content of document n of a
// round, so that the parent can regenerate the document in flight.
func crashContent(round, n int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(round))
	binary.LittleEndian.PutUint64(seed[8:], uint64(n))
	b := make([]byte, crashDocSize)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// crashWriters is the number of concurrent writers of the docs-parallel
// mode.
const crashWriters = 4

// crashBatch is the number of documents per AddDocuments call of the
// docs-batch-filesystem mode: one pack file per call.
const crashBatch = 25

func crashTenantID(round, n int) string { return fmt.Sprintf("r%d-t%d", round, n) }

// TestCrashChild is the child process; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	mode := os.Getenv(envCrashMode)
	if mode == "" {
		t.Skip("crash child: run by TestCrashSafety only")
	}
	round, _ := strconv.Atoi(os.Getenv(envCrashRound))
	scfg, ecfg := crashConfigs(os.Getenv(envCrashDir), mode, os.Getenv(envCrashSync))
	fail := func(format string, args ...any) {
		fmt.Printf("ERR "+format+"\n", args...)
		os.Exit(3)
	}
	be, err := sqlite.Open(bgctx, scfg)
	if err != nil {
		fail("open: %v", err)
	}
	if _, err := engine.Bootstrap(bgctx, be, ecfg); err != nil {
		fail("bootstrap: %v", err)
	}
	eng, err := engine.New(bgctx, be, ecfg)
	if err != nil {
		fail("new: %v", err)
	}
	out := os.Stdout // unbuffered: a line is written when Printf returns
	if mode == "tenants" {
		fmt.Fprintln(out, "READY")
		for n := 0; ; n++ {
			id := crashTenantID(round, n)
			fmt.Fprintf(out, "BEGIN %s\n", id)
			if _, err := eng.Provisioner("crash").Create(bgctx, id, ""); err != nil {
				fail("create %s: %v", id, err)
			}
			fmt.Fprintf(out, "TENANT %s\n", id)
		}
	}
	if _, err := eng.Provisioner("crash").Create(bgctx, "acme", ""); err != nil && !errors.Is(err, docex.ErrTenantExists) {
		fail("create acme: %v", err)
	}
	s := eng.As(docex.UserContext{UserID: "crash", TenantID: "acme", Roles: []string{"writer"}})
	b, err := s.BasketByName(bgctx, "crash")
	if errors.Is(err, docex.ErrNotFound) {
		b, err = s.CreateBasket(bgctx, "crash")
	}
	if err != nil {
		fail("basket: %v", err)
	}
	fmt.Fprintln(out, "READY")
	if mode == "docs-batch-filesystem" {
		// Batches: each call's small contents go into one pack file whose
		// locators commit with the documents.
		for n := 0; ; n += crashBatch {
			docs := make([]engine.NewDocument, crashBatch)
			for i := range docs {
				docs[i] = engine.NewDocument{Name: fmt.Sprintf("r%d-%d.bin", round, n+i), Content: bytes.NewReader(crashContent(round, n+i))}
			}
			fmt.Fprintf(out, "BEGIN %d\n", n)
			added, err := s.AddDocuments(bgctx, b.ID, docs)
			if err != nil {
				fail("add: %v", err)
			}
			var buf strings.Builder
			for _, a := range added {
				if a.Duplicate {
					fail("add %d: duplicate", n)
				}
				fmt.Fprintf(&buf, "DOC %s %s\n", a.Document.ID, a.Document.Checksum)
			}
			fmt.Fprint(out, buf.String())
		}
	}
	if mode == "docs-parallel" {
		// Concurrent writers: their adds share commits (group commit).
		var mu sync.Mutex
		var next atomic.Int64
		for range crashWriters {
			go func() {
				for {
					n := int(next.Add(1)) - 1
					data := crashContent(round, n)
					mu.Lock()
					fmt.Fprintf(out, "BEGIN %d\n", n)
					mu.Unlock()
					a, err := s.AddDocument(bgctx, b.ID, engine.NewDocument{
						Name: fmt.Sprintf("r%d-%d.bin", round, n), Content: bytes.NewReader(data),
					})
					if err != nil {
						fail("add: %v", err)
					}
					mu.Lock()
					fmt.Fprintf(out, "DOC %s %s\n", a.Document.ID, a.Document.Checksum)
					mu.Unlock()
				}
			}()
		}
		select {}
	}
	for n := 0; ; n++ {
		data := crashContent(round, n)
		fmt.Fprintf(out, "BEGIN %d\n", n)
		a, err := s.AddDocument(bgctx, b.ID, engine.NewDocument{
			Name: fmt.Sprintf("r%d-%d.bin", round, n), Content: bytes.NewReader(data),
			Metadata: map[string]docex.Value{"round": docex.Number(float64(round)), "n": docex.Number(float64(n))},
		})
		if err != nil {
			fail("add: %v", err)
		}
		if a.Duplicate {
			fail("add %d: duplicate", n)
		}
		fmt.Fprintf(out, "DOC %s %s\n", a.Document.ID, a.Document.Checksum)
	}
}

// runCrashChild starts a child, kills it with SIGKILL a random moment after
// it is ready and returns the complete lines it printed.
func runCrashChild(t *testing.T, dir, mode, sync string, round int, rng *rand.Rand) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envCrashMode+"="+mode, envCrashDir+"="+dir, envCrashSync+"="+sync, envCrashRound+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		br := bufio.NewReader(stdout)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return // an incomplete last line was cut by the kill: dropped
			}
			lines <- strings.TrimSuffix(l, "\n")
		}
	}()
	var got []string
	ready := false
	timeout := time.After(60 * time.Second)
	for !ready {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("child exited before it was ready: %q\nstderr: %s", got, stderr.String())
			}
			got = append(got, l)
			ready = l == "READY"
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("child not ready after 60s\nstderr: %s", stderr.String())
		}
	}
	kill := time.After(time.Duration(50+rng.IntN(351)) * time.Millisecond)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited by itself: %q\nstderr: %s", tail(got), stderr.String())
			}
			got = append(got, l)
		case <-kill:
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			done = true
		}
	}
	for l := range lines {
		got = append(got, l)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("child did not die by the signal: %v\nstderr: %s", err, stderr.String())
	}
	for _, l := range got {
		if strings.HasPrefix(l, "ERR ") {
			t.Fatalf("child failed: %s\nstderr: %s", l, stderr.String())
		}
	}
	return got
}

func tail(s []string) []string { return s[max(0, len(s)-5):] }

func TestCrashSafety(t *testing.T) {
	if os.Getenv(envCrashMode) != "" {
		t.Skip("in the crash child")
	}
	const rounds = 3
	for _, mode := range []string{"tenants", "docs-filesystem", "docs-database", "docs-parallel", "docs-batch-filesystem"} {
		for _, sync := range []string{"full", "normal"} {
			t.Run(mode+"/"+sync, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
				st := &crashState{tenants: map[string]bool{}, docs: map[string]string{}}
				for round := 0; round < rounds; round++ {
					lines := runCrashChild(t, dir, mode, sync, round, rng)
					if mode == "tenants" {
						verifyTenants(t, dir, mode, sync, round, lines, st)
					} else {
						verifyDocs(t, dir, mode, sync, round, lines, st)
					}
				}
				t.Logf("%d tenants / %d documents acknowledged across %d kills", len(st.tenants), len(st.docs), rounds)
			})
		}
	}
}

// crashState is what the parent knows must exist.
type crashState struct {
	tenants map[string]bool   // every tenant id acknowledged (or settled after a crash)
	docs    map[string]string // document id -> checksum
}

func openCrashRig(t *testing.T, dir, mode, sync string) *rig {
	scfg, ecfg := crashConfigs(dir, mode, sync)
	scfg.BusyTimeout = time.Millisecond // Sweep's grace is 2 busy timeouts
	return openRig(t, scfg, ecfg, false)
}

func verifyTenants(t *testing.T, dir, mode, sync string, round int, lines []string, st *crashState) {
	t.Helper()
	inflight := ""
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "BEGIN "):
			inflight = strings.TrimPrefix(l, "BEGIN ")
		case strings.HasPrefix(l, "TENANT "):
			id := strings.TrimPrefix(l, "TENANT ")
			if id != inflight {
				t.Fatalf("acknowledged %s while %s was in flight", id, inflight)
			}
			st.tenants[id] = true
			inflight = ""
		}
	}
	time.Sleep(10 * time.Millisecond) // past Sweep's grace
	r := openCrashRig(t, dir, mode, sync)
	defer r.close()

	// Orphans (a file renamed in place whose registry row never
	// committed, a temporary file of a build) are swept; registered
	// files are not.
	removed, err := r.be.Sweep(bgctx, 0, false)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if len(removed) > 0 {
		t.Logf("round %d: swept %v", round, removed)
	}
	registered, err := r.be.Tenants(bgctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := map[string]docex.Tenant{}
	for _, tn := range registered {
		if !tn.IsSystem {
			reg[tn.ID] = tn
		}
	}
	// Nothing but the files of registered tenants remains.
	tenantsDir := filepath.Join(r.be.Dir(), "tenants")
	for _, f := range filesUnder(t, tenantsDir) {
		id, name := filepath.Dir(f), filepath.Base(f)
		tn, ok := reg[id]
		if !ok || !strings.HasPrefix(name, tn.Incarnation+".db") {
			t.Errorf("round %d: file %s belongs to no registered tenant", round, f)
		}
	}
	// Every registered tenant opens: none is half-made.
	for id := range reg {
		s, err := r.be.OpenTenant(bgctx, id)
		if err != nil {
			t.Fatalf("round %d: registered tenant %s does not open: %v", round, id, err)
		}
		s.Close()
		if !st.tenants[id] && id != inflight {
			t.Fatalf("round %d: tenant %s registered but never attempted", round, id)
		}
	}
	// Every acknowledged tenant exists and works.
	for id := range st.tenants {
		if _, ok := reg[id]; !ok {
			t.Fatalf("round %d: acknowledged tenant %s lost", round, id)
		}
		if _, err := r.as(id).CreateBasket(bgctx, fmt.Sprintf("check-%d", round)); err != nil {
			t.Fatalf("round %d: tenant %s: CreateBasket: %v", round, id, err)
		}
	}
	// The tenant in flight either committed or can be created cleanly.
	if inflight != "" {
		_, err := r.eng.Provisioner("check").Create(bgctx, inflight, "")
		_, wasRegistered := reg[inflight]
		switch {
		case err == nil && !wasRegistered:
		case errors.Is(err, docex.ErrTenantExists) && wasRegistered:
		default:
			t.Fatalf("round %d: Create(%s) in flight at the kill = %v (registered: %v)", round, inflight, err, wasRegistered)
		}
		if _, err := r.as(inflight).CreateBasket(bgctx, fmt.Sprintf("check-%d", round)); err != nil {
			t.Fatalf("round %d: tenant %s in flight: %v", round, inflight, err)
		}
		st.tenants[inflight] = true
	}
}

func verifyDocs(t *testing.T, dir, mode, sync string, round int, lines []string, st *crashState) {
	t.Helper()
	inflight := -1
	maxInflight := 1
	switch mode {
	case "docs-parallel":
		maxInflight = crashWriters
	case "docs-batch-filesystem":
		maxInflight = crashBatch
	}
	for _, l := range lines {
		f := strings.Fields(l)
		switch f[0] {
		case "BEGIN":
			inflight, _ = strconv.Atoi(f[1])
		case "DOC":
			st.docs[f[1]] = f[2]
			if maxInflight == 1 {
				inflight = -1
			}
		}
	}
	if maxInflight > 1 {
		inflight = -1 // several were in flight; the checks below bound them
	}
	r := openCrashRig(t, dir, mode, sync)
	defer r.close()
	s := r.as("acme")
	b, err := s.BasketByName(bgctx, "crash")
	if err != nil {
		t.Fatalf("round %d: basket: %v", round, err)
	}
	check := func(stage string) {
		t.Helper()
		for id, sum := range st.docs {
			d, err := s.Document(bgctx, id)
			if err != nil {
				t.Fatalf("round %d (%s): acknowledged document %s: %v", round, stage, id, err)
			}
			if d.Checksum != sum || d.Size != crashDocSize {
				t.Fatalf("round %d (%s): document %s has checksum %s size %d, acknowledged %s", round, stage, id, d.Checksum, d.Size, sum)
			}
		}
		// Every document of the basket, acknowledged or not, is whole.
		n := 0
		for off := 0; ; off += 500 {
			docs, err := s.Documents(bgctx, b.ID, docex.Page{Limit: 500, Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range docs {
				data, err := s.ReadContent(bgctx, d.ID)
				if err != nil {
					t.Fatalf("round %d (%s): document %s unreadable: %v", round, stage, d.ID, err)
				}
				if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != d.Checksum {
					t.Fatalf("round %d (%s): document %s content does not match its checksum", round, stage, d.ID)
				}
			}
			n += len(docs)
			if len(docs) < 500 {
				break
			}
		}
		if n < len(st.docs) || n > len(st.docs)+maxInflight {
			t.Fatalf("round %d (%s): basket holds %d documents, %d acknowledged", round, stage, n, len(st.docs))
		}
		// The basket's statistics agree with its documents.
		bk, err := s.Basket(bgctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bk.DocumentCount != int64(n) || bk.Bytes != int64(n)*crashDocSize {
			t.Fatalf("round %d (%s): basket stats %d documents %d bytes, listing has %d documents of %d bytes", round, stage, bk.DocumentCount, bk.Bytes, n, crashDocSize)
		}
	}
	check("after the kill")
	if maxInflight > 1 {
		// Writes committed but not acknowledged before the kill (at most
		// one per writer, checked above) are whole; adopt them so that the
		// next round's bound counts only its own writes in flight.
		for off := 0; ; off += 500 {
			docs, err := s.Documents(bgctx, b.ID, docex.Page{Limit: 500, Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range docs {
				st.docs[d.ID] = d.Checksum
			}
			if len(docs) < 500 {
				break
			}
		}
	}

	// The document in flight either committed or can be added cleanly.
	if inflight >= 0 {
		data := crashContent(round, inflight)
		a, err := s.AddDocument(bgctx, b.ID, engine.NewDocument{Name: "retry.bin", Content: bytes.NewReader(data)})
		if err != nil {
			t.Fatalf("round %d: re-adding the document in flight: %v", round, err)
		}
		got, err := s.ReadContent(bgctx, a.Document.ID)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d: document in flight reads back wrong: %v", round, err)
		}
		st.docs[a.Document.ID] = a.Document.Checksum
	}
	// A sweep removes crash leftovers and never acknowledged content.
	rep, err := r.eng.Provisioner("check").Sweep(bgctx, engine.SweepOptions{})
	if err != nil {
		t.Fatalf("round %d: Sweep: %v", round, err)
	}
	if len(rep.Storage)+len(rep.ContentDirs)+rep.ContentFiles > 0 {
		t.Logf("round %d: swept %+v", round, rep)
	}
	check("after the sweep")
	if strings.HasSuffix(mode, "-filesystem") {
		tmp := 0
		filepath.WalkDir(filepath.Join(dir, "content"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "stage-") {
				tmp++
			}
			return nil
		})
		if tmp > 0 {
			t.Fatalf("round %d: %d temporary content files left after the sweep", round, tmp)
		}
		// Every pack left after the sweep holds a document's content: the
		// pack of a batch in flight at the kill (written, never committed)
		// was removed.
		ts, err := r.be.OpenTenant(bgctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		defer ts.Close()
		referenced := map[string]bool{}
		for _, sum := range st.docs {
			rc, err := ts.OpenContent(bgctx, sum)
			if err != nil {
				continue // not packed
			}
			b := new(bytes.Buffer)
			b.ReadFrom(rc)
			rc.Close()
			if f := strings.Fields(b.String()); len(f) == 4 && f[0] == "docex-pack/1" {
				referenced[f[1]] = true
			}
		}
		filepath.WalkDir(filepath.Join(dir, "content"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".pack") && !referenced[d.Name()] {
				t.Errorf("round %d: pack %s is referenced by no document after the sweep", round, d.Name())
			}
			return nil
		})
		if len(referenced) == 0 && len(st.docs) > 0 {
			t.Fatalf("round %d: no document content is packed", round)
		}
	}
}
