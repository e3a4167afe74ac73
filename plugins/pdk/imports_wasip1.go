//go:build wasip1

package pdk

import "unsafe"

//go:wasmimport docex log
func hostLog(level int32, ptr unsafe.Pointer, n uint32) int32

//go:wasmimport docex doc_size
func hostDocSize(h int32) int64

//go:wasmimport docex doc_name
func hostDocName(h int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport docex doc_content_type
func hostDocContentType(h int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport docex content_read
func hostContentRead(h int32, off int64, buf unsafe.Pointer, n uint32) int32

//go:wasmimport docex metadata_get
func hostMetadataGet(h int32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport docex metadata_keys
func hostMetadataKeys(h int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport docex metadata_set
func hostMetadataSet(key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32) int32

//go:wasmimport docex emit
func hostEmit(name unsafe.Pointer, nameLen uint32, ct unsafe.Pointer, ctLen uint32, data unsafe.Pointer, dataLen uint32) int32

//go:wasmimport docex derived_metadata_set
func hostDerivedMetadataSet(name unsafe.Pointer, nameLen uint32, key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32) int32

//go:wasmimport docex param_get
func hostParamGet(key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport docex set_status
func hostSetStatus(code int32, msg unsafe.Pointer, msgLen uint32) int32

//go:wasmimport docex lookup_name
func hostLookupName(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer, outCap uint32) int32

//go:wasmimport docex lookup_metadata
func hostLookupMetadata(key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32, out unsafe.Pointer, outCap uint32) int32
