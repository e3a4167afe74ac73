package config_test

import (
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
)

func ExampleParse() {
	f, err := config.Parse([]byte("config_version: 1\ndatabase:\n  type: sqlite\n  sqlite:\n    path: data\n"), "/srv/docex")
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Database.SQLite.Path, f.Storage.Documents.Path, f.MultiTenant())

	_, err = config.Parse([]byte("config_version: 1\ndatabse:\n  type: sqlite\n"), "/srv/docex")
	fmt.Println(errors.Is(err, docex.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// /srv/docex/data /srv/docex/data/content true
	// true
	// config key databse (line 2): unknown key (did you mean "database"?)
}
