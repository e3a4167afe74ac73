package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

func TestPluginStores(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	acme, beta := openStore(t, b, "acme"), openStore(t, b, "beta")
	stores := []struct {
		name  string
		ps    driver.PluginStore
		other driver.PluginStore // must not see ps's plugins
	}{
		{"tenant", acme.Plugins(), beta.Plugins()},
		{"system", b.SystemPlugins(), acme.Plugins()},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			mod := []byte("module-" + s.name)
			h := sha256.Sum256(mod)
			rec := driver.PluginRecord{Name: "wc", Version: "1.0.0", Manifest: []byte("name = 'wc'"), ModuleSHA256: hex.EncodeToString(h[:]), InstalledAt: time.Now(), InstalledBy: "op"}
			wantErr(t, s.ps.PutPlugin(bg, driver.PluginRecord{Name: "bad", ModuleSHA256: "00"}, mod), docex.ErrInvalid)
			must(t, s.ps.PutPlugin(bg, rec, mod))
			got, data, err := s.ps.Plugin(bg, "wc")
			must(t, err)
			if string(data) != string(mod) || got.Version != "1.0.0" || !got.InstalledAt.Equal(rec.InstalledAt.Truncate(time.Microsecond)) {
				t.Fatalf("Plugin = %+v %q", got, data)
			}
			if list, err := s.other.Plugins(bg); err != nil || len(list) != 0 {
				t.Fatalf("other store sees %+v, %v", list, err)
			}
			// Replace with a new module: the old module goes.
			mod2 := []byte("module-2")
			h2 := sha256.Sum256(mod2)
			rec.Version, rec.ModuleSHA256 = "2.0.0", hex.EncodeToString(h2[:])
			must(t, s.ps.PutPlugin(bg, rec, mod2))
			list, err := s.ps.Plugins(bg)
			must(t, err)
			if len(list) != 1 || list[0].Version != "2.0.0" {
				t.Fatalf("Plugins = %+v", list)
			}
			must(t, s.ps.DeletePlugin(bg, "wc"))
			wantErr(t, s.ps.DeletePlugin(bg, "wc"), docex.ErrNotFound)
			_, _, err = s.ps.Plugin(bg, "wc")
			wantErr(t, err, docex.ErrNotFound)
		})
	}
	for _, tbl := range []string{"docex_system.plugin_modules", "docex_t_acme.plugin_modules"} {
		if n := queryInt(t, b, `SELECT count(*) FROM `+tbl); n != 0 {
			t.Fatalf("%s keeps %d orphan modules", tbl, n)
		}
	}
}
