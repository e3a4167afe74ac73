package testplugins

import (
	"embed"
	"io/fs"
)

//go:generate ./build.sh
//go:embed */plugin.toml */*.wasm
var files embed.FS

// Dir returns the plugin directory name (e.g. "echo") as an fs.FS, ready
// for reading with fs.ReadFile.
func Dir(name string) (fs.FS, error) {
	return fs.Sub(files, name)
}
