// Package pdk is the Go plugin development kit for docex plugins (ABI v1,
// docs/plugin-abi.md). A plugin is a wasip1 reactor built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o plugin.wasm .
//
// whose main package exports docex_run and hands control to Run:
//
//	//go:wasmexport docex_run
//	func docexRun() int32 { return pdk.Run(process) }
//
// A plugin may also export docex_validate, which checks its parameters
// once, when a pipeline is created, rather than on every document:
//
//	//go:wasmexport docex_validate
//	func docexValidate() int32 { return pdk.Validate(checkParams) }
//
// The functions reach the host through //go:wasmimport declarations that
// exist only under GOOS=wasip1. On other platforms the package still compiles
// (so host-side go vet and go test work) but every call fails with
// ErrNotInSandbox.
package pdk
